// PostGraphile 5 (Grafast) for bench/compare: the amber preset plus the V4 naming preset, so it
// serves the same Q1/Q2 bodies (organizationById, sharedLinkByTokenHash) as PostGraphile 4.
// bench/compare/run copies this file into the PostGraphile 5 install and sets the two variables.
import { makeV4Preset } from "postgraphile/presets/v4";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";
export default {
  extends: [PostGraphileAmberPreset, makeV4Preset({ dynamicJson: true, setofFunctionsContainNulls: false, legacyRelations: "omit", disableQueryLog: true })],
  pgServices: [makePgService({ connectionString: process.env.PEER_URL, schemas: ["public"] })],
  grafserv: { port: Number(process.env.PGL5_PORT || 5005), host: "127.0.0.1" },
  grafast: { explain: false },
};
