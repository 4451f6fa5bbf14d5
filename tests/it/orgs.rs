//! Organizations, roles, LAST_OWNER and tenancy.
use serde_json::{json, Value};

use crate::helpers::{error_codes, spawn, user_error_codes, TestApp, TestUser};

const CHANGE_ROLE: &str = "mutation($o: ID!, $u: ID!, $r: Role!) { changeMemberRole(organizationId: $o, userId: $u, role: $r) {
    membership { role user { id } organization { id } } userErrors { code message } } }";
const REMOVE: &str = "mutation($o: ID!, $u: ID!) { removeMember(organizationId: $o, userId: $u) { deletedId userErrors { code message } } }";
const LEAVE: &str =
    "mutation($o: ID!) { leaveOrganization(id: $o) { deletedId userErrors { code message } } }";

async fn change_role(app: &TestApp, as_: &TestUser, org: &str, user: &str, role: &str) -> Value {
    let body = app
        .gql(
            Some(&as_.token),
            CHANGE_ROLE,
            json!({ "o": org, "u": user, "r": role }),
        )
        .await;
    body["data"]["changeMemberRole"].clone()
}

async fn roles(app: &TestApp, as_: &TestUser, org: &str) -> Vec<(String, String)> {
    let body = app
        .gql(
            Some(&as_.token),
            "query($o: ID!) { organization(id: $o) { members { nodes { role user { id } } } } }",
            json!({ "o": org }),
        )
        .await;
    body["data"]["organization"]["members"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["user"]["id"].as_str().unwrap().to_string(),
                n["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Ana owns the org; Ad is ADMIN, Mo is MEMBER.
async fn team(app: &TestApp) -> (TestUser, TestUser, TestUser) {
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let ad = app.sign_up("Ad", "ad@example.com").await;
    let mo = app.sign_up("Mo", "mo@example.com").await;
    app.add_member(&ana.org_id, &ad.id, "admin").await;
    app.add_member(&ana.org_id, &mo.id, "member").await;
    (ana, ad, mo)
}

#[tokio::test]
async fn create_rename_policy_and_active_organization() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let body = app
        .gql(Some(&ana.token), "mutation { createOrganization(name: \" Acme \") { organization { id name viewerRole invitePolicy members { totalCount } } userErrors { code } } }", json!({}))
        .await;
    let org = &body["data"]["createOrganization"]["organization"];
    assert_eq!(org["name"], "Acme");
    assert_eq!(org["viewerRole"], "OWNER");
    assert_eq!(org["invitePolicy"], "ANY_MEMBER");
    assert_eq!(org["members"]["totalCount"], 1);
    let acme = org["id"].as_str().unwrap().to_string();

    let body = app
        .gql(Some(&ana.token), "mutation($o: ID!) { renameOrganization(id: $o, name: \"Acme Inc\") { organization { name } userErrors { code } } }", json!({ "o": acme }))
        .await;
    assert_eq!(
        body["data"]["renameOrganization"]["organization"]["name"],
        "Acme Inc"
    );

    let body = app
        .gql(Some(&ana.token), "mutation($o: ID!) { setInvitePolicy(organizationId: $o, policy: ADMINS_ONLY) { organization { invitePolicy } userErrors { code } } }", json!({ "o": acme }))
        .await;
    assert_eq!(
        body["data"]["setInvitePolicy"]["organization"]["invitePolicy"],
        "ADMINS_ONLY"
    );

    let body = app
        .gql(Some(&ana.token), "mutation($o: ID!) { setActiveOrganization(id: $o) { organization { id } userErrors { code } } }", json!({ "o": acme }))
        .await;
    assert_eq!(
        body["data"]["setActiveOrganization"]["organization"]["id"],
        acme.as_str()
    );
    let me = app
        .gql(
            Some(&ana.token),
            "{ me { activeOrganization { id } memberships { organization { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["activeOrganization"]["id"], acme.as_str());
    assert_eq!(me["data"]["me"]["memberships"].as_array().unwrap().len(), 2);

    for name in ["", "   ", &"x".repeat(101)] {
        let body = app
            .gql(Some(&ana.token), "mutation($n: String!) { createOrganization(name: $n) { organization { id } userErrors { code field } } }", json!({ "n": name }))
            .await;
        assert_eq!(
            user_error_codes(&body["data"]["createOrganization"]),
            vec!["INVALID_INPUT"]
        );
    }
}

#[tokio::test]
async fn members_cannot_manage_and_admins_cannot_touch_owners() {
    let app = spawn().await;
    let (ana, ad, mo) = team(&app).await;
    let org = ana.org_id.clone();

    // A member changes nothing.
    let p = change_role(&app, &mo, &org, &ad.id, "MEMBER").await;
    assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"]);
    let body = app.gql(Some(&mo.token), "mutation($o: ID!) { renameOrganization(id: $o, name: \"Mine\") { organization { id } userErrors { code } } }", json!({ "o": org })).await;
    assert_eq!(
        user_error_codes(&body["data"]["renameOrganization"]),
        vec!["PERMISSION_DENIED"]
    );
    let body = app
        .gql(Some(&mo.token), REMOVE, json!({ "o": org, "u": ad.id }))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["removeMember"]),
        vec!["PERMISSION_DENIED"]
    );

    // An admin manages members but cannot make or demote an owner.
    let p = change_role(&app, &ad, &org, &mo.id, "OWNER").await;
    assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"]);
    let p = change_role(&app, &ad, &org, &ana.id, "MEMBER").await;
    assert_eq!(user_error_codes(&p), vec!["PERMISSION_DENIED"]);
    let body = app
        .gql(Some(&ad.token), REMOVE, json!({ "o": org, "u": ana.id }))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["removeMember"]),
        vec!["PERMISSION_DENIED"]
    );
    let p = change_role(&app, &ad, &org, &mo.id, "ADMIN").await;
    assert_eq!(p["userErrors"], json!([]));
    assert_eq!(p["membership"]["role"], "ADMIN");

    // The owner can make an owner.
    let p = change_role(&app, &ana, &org, &ad.id, "OWNER").await;
    assert_eq!(p["membership"]["role"], "OWNER");
    let r = roles(&app, &ana, &org).await;
    assert!(
        r.contains(&(ad.id.clone(), "OWNER".into()))
            && r.contains(&(mo.id.clone(), "ADMIN".into())),
        "{r:?}"
    );
}

#[tokio::test]
async fn the_last_owner_cannot_leave_or_be_demoted() {
    let app = spawn().await;
    let (ana, ad, _mo) = team(&app).await;
    let org = ana.org_id.clone();

    let p = change_role(&app, &ana, &org, &ana.id, "ADMIN").await;
    assert_eq!(user_error_codes(&p), vec!["LAST_OWNER"]);
    let body = app.gql(Some(&ana.token), LEAVE, json!({ "o": org })).await;
    assert_eq!(
        user_error_codes(&body["data"]["leaveOrganization"]),
        vec!["LAST_OWNER"]
    );
    let body = app
        .gql(Some(&ana.token), REMOVE, json!({ "o": org, "u": ana.id }))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["removeMember"]),
        vec!["LAST_OWNER"]
    );

    // With a second owner, the first may step down and leave.
    change_role(&app, &ana, &org, &ad.id, "OWNER").await;
    let p = change_role(&app, &ana, &org, &ana.id, "ADMIN").await;
    assert_eq!(p["membership"]["role"], "ADMIN");
    let body = app.gql(Some(&ana.token), LEAVE, json!({ "o": org })).await;
    assert_eq!(body["data"]["leaveOrganization"]["userErrors"], json!([]));
    assert!(body["data"]["leaveOrganization"]["deletedId"]
        .as_str()
        .unwrap()
        .starts_with("mem_"));

    // Ana is out, her active organization moved to one she still belongs to, and the feed says so.
    let body = app
        .gql(
            Some(&ana.token),
            "query($o: ID!) { organization(id: $o) { id } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"]);
    let me = app
        .gql(
            Some(&ana.token),
            "{ me { activeOrganization { id } memberships { role } } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["memberships"], json!([]));
    assert_eq!(me["data"]["me"]["activeOrganization"], json!(null));
    let feed = app.gql(Some(&ad.token), "query($o: ID!) { organization(id: $o) { activity(first: 1) { nodes { type summary data } } } }", json!({ "o": org })).await;
    let e = &feed["data"]["organization"]["activity"]["nodes"][0];
    assert_eq!(e["type"], "MEMBER_REMOVED");
    assert_eq!(e["summary"], "Ana left Ana's workspace");
    assert_eq!(e["data"]["reason"], "left");
}

#[tokio::test]
async fn removing_a_member_records_it_and_revokes_access() {
    let app = spawn().await;
    let (ana, ad, mo) = team(&app).await;
    let org = ana.org_id.clone();
    let body = app
        .gql(Some(&ad.token), REMOVE, json!({ "o": org, "u": mo.id }))
        .await;
    assert_eq!(body["data"]["removeMember"]["userErrors"], json!([]));
    let body = app
        .gql(
            Some(&mo.token),
            "query($o: ID!) { organization(id: $o) { name } }",
            json!({ "o": org }),
        )
        .await;
    assert_eq!(body["data"]["organization"], json!(null));
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"]);
    let feed = app.gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { activity(first: 1) { nodes { type summary actor { displayName } } } } }", json!({ "o": org })).await;
    let e = &feed["data"]["organization"]["activity"]["nodes"][0];
    assert_eq!(e["type"], "MEMBER_REMOVED");
    assert_eq!(e["summary"], "Ad removed Mo from Ana's workspace");
    assert_eq!(e["actor"]["displayName"], "Ad");
    // Removing someone who is not a member.
    let body = app
        .gql(Some(&ad.token), REMOVE, json!({ "o": org, "u": mo.id }))
        .await;
    assert_eq!(
        user_error_codes(&body["data"]["removeMember"]),
        vec!["NOT_FOUND"]
    );
}

#[tokio::test]
async fn another_tenant_sees_and_changes_nothing() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let eve = app.sign_up("Eve", "eve@evil.io").await;
    let org = ana.org_id.clone();

    let body = app
        .gql(Some(&eve.token), "query($o: ID!) { organization(id: $o) { id name members { nodes { user { email } } } activity { nodes { summary } } } }", json!({ "o": org }))
        .await;
    assert_eq!(body["data"]["organization"], json!(null));
    assert_eq!(error_codes(&body), vec!["FORBIDDEN"]);
    assert!(!body.to_string().contains("ana@example.com"));

    let attempts = [
        ("renameOrganization", "mutation($o: ID!) { renameOrganization(id: $o, name: \"Pwned\") { organization { id } userErrors { code } } }", json!({ "o": org })),
        ("setInvitePolicy", "mutation($o: ID!) { setInvitePolicy(organizationId: $o, policy: ADMINS_ONLY) { organization { id } userErrors { code } } }", json!({ "o": org })),
        ("setActiveOrganization", "mutation($o: ID!) { setActiveOrganization(id: $o) { organization { id } userErrors { code } } }", json!({ "o": org })),
        ("changeMemberRole", CHANGE_ROLE, json!({ "o": org, "u": eve.id, "r": "OWNER" })),
        ("removeMember", REMOVE, json!({ "o": org, "u": ana.id })),
        ("leaveOrganization", LEAVE, json!({ "o": org })),
    ];
    for (field, query, vars) in attempts {
        let body = app.gql(Some(&eve.token), query, vars).await;
        let p = &body["data"][field];
        assert_eq!(
            user_error_codes(p),
            vec!["PERMISSION_DENIED"],
            "{field}: {body}"
        );
        assert!(
            p.get("organization").is_none_or(|o| o.is_null()),
            "{field}: {body}"
        );
    }
    // Nothing changed for Ana.
    let body = app.gql(Some(&ana.token), "query($o: ID!) { organization(id: $o) { name invitePolicy members { totalCount nodes { role } } } }", json!({ "o": org })).await;
    let o = &body["data"]["organization"];
    assert_eq!(o["name"], "Ana's workspace");
    assert_eq!(o["invitePolicy"], "ANY_MEMBER");
    assert_eq!(o["members"]["totalCount"], 1);
    let me = app
        .gql(
            Some(&eve.token),
            "{ me { activeOrganization { id } memberships { organization { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"]["me"]["activeOrganization"]["id"],
        eve.org_id.as_str()
    );
    assert!(!me.to_string().contains(&org));
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    for id in ["org_0192f5e0c4a87c3b9d1e2f3a4b5c6d7e", "nonsense", &ana.id] {
        let body = app
            .gql(
                Some(&ana.token),
                "query($o: ID!) { organization(id: $o) { id } }",
                json!({ "o": id }),
            )
            .await;
        assert_eq!(error_codes(&body), vec!["NOT_FOUND"], "{id}: {body}");
        let body = app.gql(Some(&ana.token), "mutation($o: ID!) { renameOrganization(id: $o, name: \"X\") { userErrors { code } } }", json!({ "o": id })).await;
        assert_eq!(
            user_error_codes(&body["data"]["renameOrganization"]),
            vec!["NOT_FOUND"]
        );
    }
    let body = app
        .gql(
            None,
            "query($o: ID!) { organization(id: $o) { id } }",
            json!({ "o": ana.org_id }),
        )
        .await;
    assert_eq!(error_codes(&body), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn members_page_with_opaque_cursors() {
    let app = spawn().await;
    let (ana, ad, mo) = team(&app).await;
    let q = "query($o: ID!, $f: Int, $a: String) { organization(id: $o) { members(first: $f, after: $a) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { user { id } } } nodes { role } } } }";
    let p1 = app
        .gql(Some(&ana.token), q, json!({ "o": ana.org_id, "f": 2 }))
        .await;
    let c = &p1["data"]["organization"]["members"];
    assert_eq!(c["totalCount"], 3);
    assert_eq!(c["pageInfo"]["hasNextPage"], true);
    assert_eq!(c["edges"][0]["node"]["user"]["id"], ana.id.as_str());
    assert_eq!(c["edges"][1]["node"]["user"]["id"], ad.id.as_str());
    assert_eq!(c["nodes"].as_array().unwrap().len(), 2);
    let after = c["pageInfo"]["endCursor"].as_str().unwrap();
    assert_eq!(after, c["edges"][1]["cursor"].as_str().unwrap());

    let p2 = app
        .gql(
            Some(&ana.token),
            q,
            json!({ "o": ana.org_id, "f": 2, "a": after }),
        )
        .await;
    let c = &p2["data"]["organization"]["members"];
    assert_eq!(c["pageInfo"]["hasNextPage"], false);
    assert_eq!(c["edges"].as_array().unwrap().len(), 1);
    assert_eq!(c["edges"][0]["node"]["user"]["id"], mo.id.as_str());

    let big = app
        .gql(Some(&ana.token), q, json!({ "o": ana.org_id, "f": 100000 }))
        .await;
    assert_eq!(
        big["data"]["organization"]["members"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    for (f, a) in [(json!(-1), json!(null)), (json!(2), json!("not a cursor"))] {
        let bad = app
            .gql(
                Some(&ana.token),
                q,
                json!({ "o": ana.org_id, "f": f, "a": a }),
            )
            .await;
        assert_eq!(error_codes(&bad), vec!["INVALID_INPUT"], "{bad}");
    }
}

#[tokio::test]
async fn concurrent_demotions_never_leave_an_organization_without_owner() {
    let app = spawn().await;
    let ana = app.sign_up("Ana", "ana@example.com").await;
    let bo = app.sign_up("Bo", "bo@example.com").await;
    app.add_member(&ana.org_id, &bo.id, "owner").await;
    // Each owner demotes themselves at the same time: one must be refused.
    let (a, b) = tokio::join!(
        change_role(&app, &ana, &ana.org_id, &ana.id, "MEMBER"),
        change_role(&app, &bo, &ana.org_id, &bo.id, "MEMBER"),
    );
    let mut codes: Vec<Vec<String>> = vec![user_error_codes(&a), user_error_codes(&b)];
    codes.sort();
    assert_eq!(codes, vec![vec![], vec!["LAST_OWNER".to_string()]]);
    let owners = roles(
        &app,
        if a["userErrors"] == json!([]) {
            &bo
        } else {
            &ana
        },
        &ana.org_id,
    )
    .await
    .into_iter()
    .filter(|(_, r)| r == "OWNER")
    .count();
    assert_eq!(owners, 1);
}
