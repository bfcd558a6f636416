//! Every ACME URL is built here (the only place that knows the path layout under the base URL).

/// The URL scheme of one ACME server: `<base>/directory`, `<base>/new-nonce`, ….
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
}

impl Links {
    /// Links under `base` (e.g. `https://127.0.0.1:8443/acme`, no trailing slash).
    pub fn new(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_owned() }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<base>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// The directory.
    pub fn directory(&self) -> String {
        self.url("directory")
    }

    /// An account URL (the `kid` clients send).
    pub fn account(&self, id: &str) -> String {
        self.url(&format!("account/{id}"))
    }

    /// The account id in a `kid`, if it is one of our account URLs.
    pub fn account_id<'a>(&self, kid: &'a str) -> Option<&'a str> {
        let id = kid.strip_prefix(self.base.as_str())?.strip_prefix("/account/")?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }

    /// An order URL.
    pub fn order(&self, id: &str) -> String {
        self.url(&format!("order/{id}"))
    }

    /// An authorization URL.
    pub fn authz(&self, id: &str) -> String {
        self.url(&format!("authz/{id}"))
    }

    /// A challenge URL.
    pub fn challenge(&self, authz_id: &str, kind: &str) -> String {
        self.url(&format!("chall/{authz_id}/{kind}"))
    }

    /// A certificate URL.
    pub fn certificate(&self, serial: &str) -> String {
        self.url(&format!("cert/{serial}"))
    }

    /// `Link: <directory>;rel="index"`.
    pub fn index_link(&self) -> String {
        format!("<{}>;rel=\"index\"", self.directory())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_come_only_from_our_urls() {
        let l = Links::new("https://ca.test/acme/");
        assert_eq!(l.account("abc"), "https://ca.test/acme/account/abc");
        assert_eq!(l.account_id("https://ca.test/acme/account/abc"), Some("abc"));
        assert_eq!(l.account_id("https://evil.test/acme/account/abc"), None);
        assert_eq!(l.account_id("https://ca.test/acme/account/a/b"), None);
    }
}
