//! Redirect policy: the one function every redirect target goes through
//! (`return_to`, `DEFAULT_RETURN_TO`, `POST_LOGOUT_REDIRECT_URI`).
//!
//! A target is either a path on the API's own origin or an absolute URL on an
//! exactly allowlisted origin, parsed with the WHATWG URL parser. Anything else
//! is refused, never "repaired": an open redirect turns a trusted login page
//! into a phishing link.

use std::fmt;

use url::Url;

/// Longest target accepted; longer ones are refused rather than truncated.
pub const MAX_TARGET_LEN: usize = 2048;

/// A web origin, `scheme://host[:port]`, in its ASCII serialization.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({})", self.0)
    }
}

impl Origin {
    /// Parses an exact origin such as `https://www.example.com`; a trailing `/`
    /// is tolerated, any other path, query, fragment or userinfo is not.
    pub fn parse(raw: &str) -> Result<Self, RedirectError> {
        if raw.chars().any(forbidden_char) {
            return Err(RedirectError::ForbiddenCharacter);
        }
        let url = Url::parse(raw).map_err(|_| RedirectError::Unparseable)?;
        check_scheme(&url)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectError::Userinfo);
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(RedirectError::NotAnOrigin);
        }
        Ok(Self::of(&url))
    }

    /// The origin of a URL.
    pub fn of(url: &Url) -> Self {
        Self(url.origin().ascii_serialization())
    }

    /// The serialized origin, as browsers send it in `Origin`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a target was refused; the reason is logged, the value never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// Empty value.
    #[error("empty")]
    Empty,
    /// Longer than [`MAX_TARGET_LEN`].
    #[error("too long")]
    TooLong,
    /// Control character, whitespace or backslash, raw or percent-encoded.
    #[error("forbidden character")]
    ForbiddenCharacter,
    /// `//host` or an encoded form of it.
    #[error("protocol-relative")]
    ProtocolRelative,
    /// Not a URL the WHATWG parser accepts, or a relative path without `/`.
    #[error("not an absolute URL or a path")]
    Unparseable,
    /// A scheme other than https (http only for loopback).
    #[error("scheme not allowed")]
    Scheme,
    /// `https://user@host`.
    #[error("userinfo not allowed")]
    Userinfo,
    /// An origin outside the allowlist.
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// Expected a bare origin.
    #[error("not a bare origin")]
    NotAnOrigin,
}

impl RedirectError {
    /// A fixed reason for the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong => "too_long",
            Self::ForbiddenCharacter => "forbidden_character",
            Self::ProtocolRelative => "protocol_relative",
            Self::Unparseable => "unparseable",
            Self::Scheme => "scheme",
            Self::Userinfo => "userinfo",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::NotAnOrigin => "not_an_origin",
        }
    }
}

/// The allowlist plus the API's own origin.
#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    own: Origin,
    own_base: Url,
    allowed: Vec<Origin>,
}

impl RedirectPolicy {
    /// `own` is the origin that serves `/auth/*`: paths resolve against it.
    pub fn new(own: Origin, allowed: Vec<Origin>) -> Self {
        // An origin's serialization always parses back to a URL.
        let own_base = Url::parse(own.as_str()).unwrap_or_else(|_| unreachable_base());
        Self {
            own,
            own_base,
            allowed,
        }
    }

    /// Whether an origin may receive redirects and call the POST endpoints.
    pub fn allows(&self, origin: &Origin) -> bool {
        *origin == self.own || self.allowed.contains(origin)
    }

    /// The allowlisted origins (not including the API's own).
    pub fn allowed_origins(&self) -> &[Origin] {
        &self.allowed
    }

    /// Checks a target and returns it as an absolute URL on an allowed origin.
    pub fn check(&self, raw: &str) -> Result<Url, RedirectError> {
        if raw.is_empty() {
            return Err(RedirectError::Empty);
        }
        if raw.len() > MAX_TARGET_LEN {
            return Err(RedirectError::TooLong);
        }
        if raw.chars().any(forbidden_char) {
            return Err(RedirectError::ForbiddenCharacter);
        }
        // Percent-decoding must not reveal what the raw form may not contain:
        // `/%2F%2Fevil` and `/%5Cevil` become authorities in some consumers.
        let decoded: Vec<u8> = percent_decode_fully(raw);
        let decoded = String::from_utf8_lossy(&decoded);
        if decoded.chars().any(forbidden_char) {
            return Err(RedirectError::ForbiddenCharacter);
        }
        let url = if raw.starts_with('/') {
            if raw.starts_with("//") || decoded.starts_with("//") {
                return Err(RedirectError::ProtocolRelative);
            }
            self.own_base
                .join(raw)
                .map_err(|_| RedirectError::Unparseable)?
        } else {
            let url = Url::parse(raw).map_err(|_| RedirectError::Unparseable)?;
            check_scheme(&url)?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(RedirectError::Userinfo);
            }
            url
        };
        if url.path().starts_with("//") {
            return Err(RedirectError::ProtocolRelative);
        }
        if !self.allows(&Origin::of(&url)) {
            return Err(RedirectError::OriginNotAllowed);
        }
        Ok(url)
    }
}

#[cold]
fn unreachable_base() -> Url {
    // `Origin` is only built from parsed http(s) URLs, whose ASCII
    // serialization always parses; this fallback can never be reached.
    Url::parse("https://invalid.invalid").unwrap_or_else(|_| unreachable!("static URL parses"))
}

fn check_scheme(url: &Url) -> Result<(), RedirectError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(url.host_str().unwrap_or_default()) => Ok(()),
        _ => Err(RedirectError::Scheme),
    }
}

/// Loopback hosts, where plain http is tolerated for local development.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn forbidden_char(c: char) -> bool {
    c.is_control() || c.is_whitespace() || c == '\\'
}

/// Decodes until stable (bounded), so double encoding cannot hide `//` or `\`.
fn percent_decode_fully(raw: &str) -> Vec<u8> {
    let mut current = raw.as_bytes().to_vec();
    for _ in 0..4 {
        let decoded: Vec<u8> = percent_encoding::percent_decode(&current).collect();
        if decoded == current {
            break;
        }
        current = decoded;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> RedirectPolicy {
        RedirectPolicy::new(
            Origin::parse("https://www.example.com").unwrap(),
            vec![
                Origin::parse("https://app.example.com").unwrap(),
                Origin::parse("http://localhost:5173").unwrap(),
            ],
        )
    }

    #[test]
    fn accepts_paths_and_allowlisted_origins() {
        for (input, want) in [
            ("/", "https://www.example.com/"),
            (
                "/members/page?x=1#top",
                "https://www.example.com/members/page?x=1#top",
            ),
            (
                "https://app.example.com/welcome",
                "https://app.example.com/welcome",
            ),
            ("https://APP.example.com:443/", "https://app.example.com/"),
            ("http://localhost:5173/", "http://localhost:5173/"),
            ("/caf%C3%A9", "https://www.example.com/caf%C3%A9"),
        ] {
            assert_eq!(
                policy().check(input).map(|u| u.to_string()),
                Ok(want.to_owned()),
                "{input:?}"
            );
        }
    }

    /// Assembled from public open-redirect payload lists (PayloadsAllTheThings'
    /// "Open Redirect" and the OWASP cheat sheet), adapted to our allowlist.
    pub(crate) const HOSTILE: &[&str] = &[
        "//evil.test",
        "///evil.test",
        "////evil.test/",
        "/\\evil.test",
        "\\/evil.test",
        "/\\/evil.test",
        "\\\\evil.test",
        "/%2F%2Fevil.test",
        "/%2f%2fevil.test",
        "/%252F%252Fevil.test",
        "/%5Cevil.test",
        "/%5cevil.test",
        "%2F%2Fevil.test",
        "/%09/evil.test",
        "/\t/evil.test",
        "/\n/evil.test",
        "/\r\nLocation: https://evil.test",
        "/%0d%0aSet-Cookie:x=y",
        "/%0aLocation:%20https://evil.test",
        " /evil",
        "/ /evil.test",
        "https://evil.test",
        "https://evil.test/https://www.example.com/",
        "https://www.example.com@evil.test",
        "https://www.example.com:pw@evil.test/",
        "https://user@www.example.com/",
        "https://www.example.com.evil.test/",
        "https://evil.test?https://www.example.com",
        "https://evil.test#https://www.example.com",
        "https://wwwexample.com/",
        "https://www.example.com%2eevil.test/",
        "https://www.example.com%40evil.test/",
        "https:evil.test",
        "https:/evil.test",
        "https:\\\\evil.test",
        "http://www.example.com/",
        "http://app.example.com/",
        "ftp://www.example.com/",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "javascript://www.example.com/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "evil.test",
        "www.example.com",
        "?next=//evil.test",
        "#//evil.test",
        "./evil",
        "../evil",
        "\u{2028}/evil",
        "/\u{0}evil",
        "/\u{7f}evil",
        "/\u{85}evil",
        "https://evil.test\u{3002}com",
        "https://ⓔⓥⓘⓛ.ⓣⓔⓢⓣ/",
        "https://www.example.com\u{ff0f}@evil.test",
        "http://localhost.evil.test:5173/",
        "http://localhost:5174/",
        "http://127.0.0.1:5173/",
        "https://[::1]/",
        "",
    ];

    #[test]
    fn rejects_known_tricks() {
        for bad in HOSTILE {
            assert!(
                policy().check(bad).is_err(),
                "{bad:?} accepted as {:?}",
                policy().check(bad)
            );
        }
        assert!(policy()
            .check(&format!("/{}", "a".repeat(MAX_TARGET_LEN)))
            .is_err());
    }

    #[test]
    fn origins_are_exact() {
        for bad in [
            "https://x.example.com/path",
            "https://x.example.com?q",
            "http://x.example.com",
            "https://u@x.example.com",
            "x.example.com",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Origin::parse("https://X.example.com/").unwrap().as_str(),
            "https://x.example.com"
        );
    }

    proptest! {
        #[test]
        fn accepted_targets_stay_on_allowed_origins(s in any::<String>()) {
            if let Ok(url) = policy().check(&s) {
                prop_assert!(policy().allows(&Origin::of(&url)));
                prop_assert!(!url.as_str().contains(['\r', '\n', '\\', ' ']));
                prop_assert!(!url.path().starts_with("//"));
            }
        }

        #[test]
        fn accepted_paths_stay_home(s in "/[ -~]{0,64}") {
            if let Ok(url) = policy().check(&s) {
                prop_assert_eq!(Origin::of(&url), Origin::parse("https://www.example.com").unwrap());
            }
        }

        #[test]
        fn prefixed_foreign_hosts_never_pass(host in "[a-z]{1,10}\\.[a-z]{2,5}", sep in prop::sample::select(vec!["//", "/\\", "/%2f%2f", "https://", "https://www.example.com@", "//www.example.com@"])) {
            let s = format!("{sep}{host}");
            if let Ok(url) = policy().check(&s) {
                prop_assert!(policy().allows(&Origin::of(&url)));
            }
        }
    }
}
