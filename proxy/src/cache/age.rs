//! How old a stored response is (RFC 9111 §4.2.3), from what the cache saw when it received
//! it: the origin's `Date` and `Age`, and when the request went out and the response came in.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{AGE, DATE};

/// What is kept with a stored response to compute its age later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The age the response already had when it arrived (`corrected_initial_age`).
    pub initial_age: Duration,
    /// When it arrived (`response_time`).
    pub at: SystemTime,
}

impl Received {
    /// `request_time` is when the request was sent, `response_time` when the response
    /// arrived; a missing or unparsable `Date` counts as `response_time`.
    pub fn new(
        headers: &HeaderMap,
        request_time: SystemTime,
        response_time: SystemTime,
    ) -> Received {
        let date = headers
            .get(DATE)
            .and_then(|value| value.to_str().ok())
            .and_then(super::dates::parse)
            .unwrap_or(response_time);
        let age_value = age_header(headers).unwrap_or(Duration::ZERO);
        let apparent_age = response_time.duration_since(date).unwrap_or(Duration::ZERO);
        let response_delay = response_time
            .duration_since(request_time)
            .unwrap_or(Duration::ZERO);
        let corrected_age_value = age_value + response_delay;
        Received {
            initial_age: apparent_age.max(corrected_age_value),
            at: response_time,
        }
    }

    /// `current_age` at `now`.
    pub fn age_at(&self, now: SystemTime) -> Duration {
        self.initial_age + now.duration_since(self.at).unwrap_or(Duration::ZERO)
    }
}

/// The `Age` header in seconds: a non-negative integer, else ignored. A list, or the field
/// repeated, counts by its first member (§5.1).
fn age_header(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(AGE)?.to_str().ok()?.split(',').next()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = text
        .parse::<u64>()
        .unwrap_or(super::directives::DELTA_SECONDS_MAX);
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    fn headers(date: Option<SystemTime>, age: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(date) = date {
            let text = httpdate::fmt_http_date(date);
            headers.insert(DATE, HeaderValue::from_str(&text).expect("date"));
        }
        if let Some(age) = age {
            headers.insert(AGE, HeaderValue::from_str(age).expect("age"));
        }
        headers
    }

    #[test]
    fn the_larger_of_apparent_and_corrected_age() {
        // The origin's clock says the response is 30 s old; its Age says 5 s plus 2 s transit.
        let received = Received::new(&headers(Some(at(70)), Some("5")), at(98), at(100));
        assert_eq!(received.initial_age, Duration::from_secs(30));
        // Age beats a clock that runs ahead.
        let received = Received::new(&headers(Some(at(200)), Some("50")), at(98), at(100));
        assert_eq!(received.initial_age, Duration::from_secs(52));
        assert_eq!(received.age_at(at(160)), Duration::from_secs(112));
    }

    #[test]
    fn a_listed_age_counts_by_its_first_member() {
        let received = Received::new(&headers(None, Some("40, 10")), at(100), at(100));
        assert_eq!(received.initial_age, Duration::from_secs(40));
        let mut repeated = headers(None, Some("7"));
        repeated.append(AGE, HeaderValue::from_static("90"));
        let received = Received::new(&repeated, at(100), at(100));
        assert_eq!(received.initial_age, Duration::from_secs(7));
    }

    #[test]
    fn a_bad_age_or_date_is_ignored() {
        let mut bad = headers(None, Some("-3"));
        bad.insert(DATE, HeaderValue::from_static("yesterday"));
        let received = Received::new(&bad, at(100), at(100));
        assert_eq!(received.initial_age, Duration::ZERO);
        assert_eq!(
            received.age_at(at(90)),
            Duration::ZERO,
            "a clock going back adds nothing"
        );
    }
}
