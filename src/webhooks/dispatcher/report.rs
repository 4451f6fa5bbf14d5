//! Report: metrics and logs of recorded attempts.
use super::{record::Finished, retry::Step, Dispatcher};
use crate::domain::webhooks::DeliveryStatus;

impl Dispatcher {
    /// Metrics and logs of a recorded attempt.
    pub(super) fn report(&self, f: &Finished, step: &Step) {
        let outcome = match step.status {
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Pending => "retry",
        };
        metrics::counter!("kfactor_webhook_attempts_total", "outcome" => outcome).increment(1);
        metrics::histogram!("kfactor_webhook_attempt_duration_seconds")
            .record(f.out.duration_ms as f64 / 1000.0);
        if step.status == DeliveryStatus::Succeeded {
            let latency = (f.at - f.job.message.created_at)
                .num_microseconds()
                .unwrap_or(0);
            metrics::histogram!("kfactor_webhook_delivery_latency_seconds")
                .record(latency as f64 / 1e6);
        }
        if step.status != DeliveryStatus::Pending {
            metrics::counter!("kfactor_webhook_deliveries_total", "status" => outcome).increment(1);
        }
        if !f.out.success() {
            tracing::info!(
                delivery_id = %f.job.delivery.id,
                endpoint_id = %f.job.endpoint.id,
                status = ?f.out.status,
                error = f.out.error.as_deref().unwrap_or(""),
                next_attempt_at = ?step.next,
                "webhook attempt failed"
            );
        }
    }
}
