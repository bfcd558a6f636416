//! The certificate selections of the CLM commands: the filters of `privca inventory list`,
//! given as options or as the `key=value` terms of `privca inventory flag-renewal --query`, and
//! the live certificates privca issued that a filter selects (what may be flagged for early
//! renewal).

use crate::{
    app::App,
    config::clm::ClmConfig,
    error::CaError,
    ledger::{InventoryFilter, InventoryStatus},
    policy::Tier,
};

/// Inventory rows read per page when selecting certificates to flag.
pub(crate) const FLAG_PAGE: i64 = 10_000;

/// The filters of `inventory list`, as options or as the `key=value` terms of
/// `flag-renewal --query`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Terms {
    pub(crate) status: Option<String>,
    pub(crate) tier: Option<String>,
    pub(crate) owner: Option<String>,
    pub(crate) issuer: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) expiring_within: Option<u32>,
    pub(crate) search: Option<String>,
}

impl Terms {
    /// Parses `key=value` terms separated by spaces (keys as the `inventory list` options,
    /// without the dashes; `expiring_within` may be spelled with an underscore).
    pub(crate) fn parse(query: &str) -> Result<Terms, CaError> {
        let mut t = Terms::default();
        let bad = |term: &str, why: &str| CaError::bad_request(format!("--query term `{term}`: {why}"));
        for term in query.split_whitespace() {
            let Some((key, value)) = term.split_once('=').filter(|(_, v)| !v.is_empty()) else {
                return Err(bad(term, "write key=value"));
            };
            let slot = match key {
                "status" => &mut t.status,
                "tier" => &mut t.tier,
                "owner" => &mut t.owner,
                "issuer" => &mut t.issuer,
                "source" => &mut t.source,
                "search" => &mut t.search,
                "expiring-within" | "expiring_within" => {
                    t.expiring_within = Some(value.parse().map_err(|_| bad(term, "a number of days"))?);
                    continue;
                }
                _ => {
                    return Err(bad(
                        term,
                        "use status, tier, owner, issuer, source, expiring-within or search (as inventory list)",
                    ))
                }
            };
            if slot.replace(value.to_owned()).is_some() {
                return Err(bad(term, "given twice"));
            }
        }
        if t == Terms::default() {
            return Err(CaError::bad_request("--query selects nothing: give at least one key=value term"));
        }
        Ok(t)
    }

    /// The inventory filter of these terms, `limit` rows per page.
    pub(crate) fn filter(self, clm: &ClmConfig, limit: i64) -> Result<InventoryFilter, CaError> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                InventoryStatus::parse(s).ok_or_else(|| {
                    CaError::bad_request(format!("status `{s}`: use valid, expiring, expired, revoked or superseded"))
                })
            })
            .transpose()?;
        Ok(InventoryFilter {
            status,
            tier: self.tier.as_deref().map(|t| tier(clm, t)).transpose()?,
            owner: self.owner,
            issuer: self.issuer,
            source: self.source,
            expiring_within: self.expiring_within.map(|d| i64::from(d) * 86_400),
            search: self.search,
            after: None,
            after_key: None,
            sort: Default::default(),
            limit,
        })
    }
}

/// The fingerprints of the live (valid or expiring) certificates privca issued that `filter`
/// selects, every page of it.
pub(crate) async fn live_privca(app: &App, mut filter: InventoryFilter) -> Result<Vec<String>, CaError> {
    let first = super::first_threshold(&app.config.clm);
    let mut out = Vec::new();
    loop {
        let page = app.ledger.inventory(&filter, &first).await?;
        out.extend(
            page.iter()
                .filter(|i| matches!(i.status, InventoryStatus::Valid | InventoryStatus::Expiring))
                .filter(|i| !matches!(i.source.as_str(), "import" | "discovery" | "privca"))
                .map(|i| i.fingerprint.clone()),
        );
        match page.last() {
            Some(last) if page.len() as i64 == filter.limit => {
                filter.after = Some((last.not_after, last.fingerprint.clone()));
            }
            _ => return Ok(out),
        }
    }
}

/// A tier of `[clm.tiers]`.
pub(crate) fn tier(clm: &ClmConfig, s: &str) -> Result<Tier, CaError> {
    clm.known_tier("tier", s).map_err(|_| CaError::bad_request(format!("tier `{s}`: use {}", clm.tier_names())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_terms_are_the_list_filters() {
        let t = Terms::parse("tier=customer-facing  owner=web-team expiring-within=60 search=shop").unwrap();
        let clm = ClmConfig::default();
        let f = t.filter(&clm, 10).unwrap();
        assert_eq!(f.tier, Some(Tier::customer_facing()));
        assert_eq!(f.owner.as_deref(), Some("web-team"));
        assert_eq!(f.expiring_within, Some(60 * 86_400));
        assert_eq!(f.search.as_deref(), Some("shop"));
        assert_eq!((f.status, f.issuer, f.source, f.limit), (None, None, None, 10));
        let f =
            Terms::parse("status=expiring issuer=ec source=acme expiring_within=7").unwrap().filter(&clm, 1).unwrap();
        assert_eq!(f.status, Some(InventoryStatus::Expiring));
        assert_eq!((f.issuer.as_deref(), f.source.as_deref()), (Some("ec"), Some("acme")));
    }

    #[test]
    fn bad_query_terms_are_named() {
        for (q, want) in [
            ("", "selects nothing"),
            ("owner", "`owner`: write key=value"),
            ("owner=", "`owner=`: write key=value"),
            ("colour=red", "`colour=red`: use status"),
            ("expiring-within=soon", "a number of days"),
            ("owner=a owner=b", "`owner=b`: given twice"),
        ] {
            let e = Terms::parse(q).unwrap_err().to_string();
            assert!(e.contains(want), "{q}: {e}");
        }
        let e = Terms::parse("tier=gold").unwrap().filter(&ClmConfig::default(), 1).unwrap_err().to_string();
        assert!(e.contains("tier `gold`: use customer-facing, internal, network-critical"), "{e}");
    }
}
