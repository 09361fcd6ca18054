//! [`SinkError`], and which API errors are worth retrying.

use std::time::Duration;

/// Errors of the API-server sink that stop it from starting.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The configuration is unusable.
    #[error("invalid sink configuration: {0}")]
    Config(String),
    /// The watch of the stored Bindings ended before its first list (the sink's task
    /// was stopped while starting).
    #[error("the watch of the stored Bindings ended before its first list")]
    WatchEnded,
    /// Listing what is stored failed (after retries, where retrying made sense).
    #[error("listing the stored {resource} failed: {source}")]
    List {
        /// `bindings` or `bindingpolicies`.
        resource: &'static str,
        /// The last error.
        #[source]
        source: kube::Error,
    },
}

/// The HTTP status code of an API error, if the server answered.
pub(crate) fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// True for errors worth another attempt: 409 Conflict, 429 Too Many Requests, 5xx (but not
/// a Binding too large to store: etcd's "request is too large", or the API server's gRPC
/// "trying to send message larger than max"; it will not get smaller) and transport errors.
pub(crate) fn is_retryable(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(s) => match s.code {
            409 | 429 => true,
            500..=599 => !is_too_large_message(&s.message),
            _ => false,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

fn is_too_large_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("too large") || message.contains("larger than max")
}

/// The delay a server asked for (`details.retryAfterSeconds` of its `Status`).
pub(crate) fn retry_after(err: &kube::Error) -> Option<Duration> {
    match err {
        kube::Error::Api(s) => s
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|&secs| secs > 0)
            .map(|secs| Duration::from_secs(secs.into())),
        _ => None,
    }
}

/// A one-line description of a failed request, for logs and `write_errors`:
/// `HTTP 422 Invalid: <server message>` for API errors.
pub(crate) fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) => {
            let mut out = format!("HTTP {}", s.code);
            if !s.reason.is_empty() {
                out.push(' ');
                out.push_str(&s.reason);
            }
            if !s.message.is_empty() {
                out.push_str(": ");
                out.push_str(&s.message);
            }
            out
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, "Reason").with_code(code).boxed())
    }

    #[test]
    fn classifies_codes() {
        for code in [409, 429, 500, 503, 504] {
            assert!(is_retryable(&api(code, "x")), "{code}");
        }
        for code in [400, 403, 404, 413, 422] {
            assert!(!is_retryable(&api(code, "x")), "{code}");
        }
        assert!(!is_retryable(&api(500, "etcdserver: request is too large")));
        let grpc = "rpc error: code = ResourceExhausted desc = trying to send message larger \
                    than max (3153917 vs. 2097152)";
        assert!(!is_retryable(&api(500, grpc)));
        assert_eq!(describe(&api(422, "bad")), "HTTP 422 Reason: bad");
    }

    #[test]
    fn reads_retry_after_seconds() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 429,
            "reason": "TooManyRequests", "message": "slow down",
            "details": {"retryAfterSeconds": 3},
        }))
        .unwrap();
        let err = kube::Error::Api(status.boxed());
        assert_eq!(retry_after(&err), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&api(429, "x")), None);
    }
}
