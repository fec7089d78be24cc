//! Whether the API server's refusal of a Job create is permanent: the classification behind
//! [`JobState::Refused`].
//!
//! - 400 BadRequest and 422 Invalid: the object itself is wrong (e.g. a memory request above its
//!   limit) and will be refused every time: permanent, the step fails with the message.
//! - Everything else may clear without any change to the run: 403 Forbidden (a ResourceQuota, an
//!   admission webhook or policy, RBAC that an administrator may change), 404 (the namespace is
//!   being re-created), 429 and 5xx (overload). The step waits and is tried again with backoff.

use super::plan::JobState;

/// The refusal of a create answered with HTTP `code`, machine reason `reason` (`Invalid`,
/// `Forbidden`, ...) and the API server's `message`.
pub fn classify(code: u16, reason: &str, message: &str) -> JobState {
    let permanent = matches!(code, 400 | 422);
    let message = if reason.is_empty() {
        format!("{message} (HTTP {code})")
    } else {
        format!("{reason}: {message}")
    };
    JobState::Refused { message, permanent }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permanent(state: JobState) -> bool {
        match state {
            JobState::Refused { permanent, .. } => permanent,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_objects_are_permanent_and_named() {
        let msg = r#"Job.batch "r-oversized-1" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: "128Mi": must be less than or equal to memory limit of 64Mi"#;
        let state = classify(422, "Invalid", msg);
        assert!(
            matches!(&state, JobState::Refused { message, .. } if message.contains("must be less than or equal to memory limit"))
        );
        assert!(permanent(state));
        assert!(permanent(classify(400, "BadRequest", "bad")));
    }

    #[test]
    fn quotas_policies_and_overload_may_clear() {
        for (code, reason) in [
            (403, "Forbidden"),
            (404, "NotFound"),
            (429, "TooManyRequests"),
            (500, "InternalError"),
            (503, ""),
        ] {
            assert!(!permanent(classify(code, reason, "exceeded quota: jobs")), "{code}");
        }
    }
}
