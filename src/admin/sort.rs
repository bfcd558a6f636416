//! The certificate list's order (`sort=`) and its cursor, shared by the API and the dashboard.
//! A cursor names the sort it belongs to and the last row's position in it: the sort key's
//! value (hex for text), notAfter and fingerprint, e.g. `-owner.7465616d2d61.1767225600.<fp>`.
//! The default order (soonest expiry first) keeps its short form `1767225600.<fp>`. A cursor
//! presented with another sort than its own is refused, so pages never skip or repeat rows.

use crate::{
    admin::problem::Problem,
    ledger::{InventoryItem, InventorySort, InventorySortKey, SortValue},
};

/// The sort names accepted (each also with a leading `-` for descending).
pub const KEYS: &str = "not_after, issued_at, serial, owner, tier or status";

/// Parses `sort=` (absent or empty: soonest expiry first); unknown keys are a 400.
pub fn parse(s: Option<&str>) -> Result<InventorySort, Problem> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(InventorySort::default()),
        Some(s) => InventorySort::parse(s)
            .ok_or_else(|| Problem::bad_request(format!("unknown sort `{s}`: use {KEYS}, optionally prefixed with -"))),
    }
}

/// The cursor continuing after `last` in `sort`.
pub fn cursor(sort: InventorySort, last: &InventoryItem) -> String {
    let tail = format!("{}.{}", last.not_after, last.fingerprint);
    match (sort.key, sort.descending) {
        (InventorySortKey::NotAfter, false) => tail,
        (InventorySortKey::NotAfter, true) => format!("{}.{tail}", sort.name()),
        (key, _) => {
            let value = match last.sort_value(key) {
                SortValue::Int(v) => v.to_string(),
                SortValue::Text(v) => hex::encode(v),
            };
            format!("{}.{value}.{tail}", sort.name())
        }
    }
}

/// Where a cursor continues: the sort key's value (sorts other than notAfter) and
/// (notAfter, fingerprint).
pub type Position = (Option<SortValue>, (i64, String));

/// Parses a cursor made by [`cursor`] for `sort`.
pub fn parse_cursor(sort: InventorySort, c: &str) -> Result<Position, Problem> {
    let bad = || Problem::bad_request("malformed cursor");
    let parts: Vec<&str> = c.split('.').collect();
    let (named, rest) = match parts.as_slice() {
        [_, _] => (InventorySort::default(), &parts[..]),
        [name, rest @ ..] => (InventorySort::parse(name).ok_or_else(bad)?, rest),
        [] => return Err(bad()),
    };
    if named != sort {
        return Err(Problem::bad_request(format!(
            "this cursor belongs to sort `{}`, not `{}`: start again without a cursor",
            named.name(),
            sort.name()
        )));
    }
    let (value, tail) = match (sort.key, rest) {
        (InventorySortKey::NotAfter, [t, fp]) => (None, (*t, *fp)),
        (key, [v, t, fp]) if key != InventorySortKey::NotAfter => {
            let value = if key.numeric() {
                SortValue::Int(v.parse().map_err(|_| bad())?)
            } else {
                let bytes = hex::decode(v).map_err(|_| bad())?;
                SortValue::Text(String::from_utf8(bytes).map_err(|_| bad())?)
            };
            (Some(value), (*t, *fp))
        }
        _ => return Err(bad()),
    };
    let (t, fp) = tail;
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok((value, (t.parse().map_err(|_| bad())?, fp.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ledger::InventoryStatus, policy::Tier};

    fn item() -> InventoryItem {
        InventoryItem {
            fingerprint: "ab".repeat(32),
            serial: "01f2".into(),
            issuer: "int".into(),
            subject: "CN=a".into(),
            sans: vec![],
            not_before: 1_700_000_000,
            not_after: 1_767_225_600,
            owner: "team.a b".into(),
            tier: Tier::parse("internal").unwrap_or_else(|| Tier::stored("internal".into())),
            application: None,
            renewal_method: "manual".into(),
            tags: vec![],
            status: InventoryStatus::Expiring,
            revocation_reason: None,
            superseded_by: None,
            source: "cli".into(),
            profile: None,
        }
    }

    #[test]
    fn every_sort_round_trips_its_cursor_and_refuses_another_sorts() {
        let i = item();
        for key in InventorySortKey::ALL {
            for descending in [false, true] {
                let sort = InventorySort { key, descending };
                let c = cursor(sort, &i);
                let (value, (t, fp)) = parse_cursor(sort, &c).unwrap();
                assert_eq!((t, fp.as_str()), (i.not_after, i.fingerprint.as_str()), "{c}");
                if key == InventorySortKey::NotAfter {
                    assert_eq!(value, None);
                } else {
                    assert_eq!(value, Some(i.sort_value(key)), "{c}");
                }
                let other = InventorySort { key, descending: !descending };
                assert_eq!(parse_cursor(other, &c).unwrap_err().status().as_u16(), 400, "{c}");
            }
        }
        assert_eq!(cursor(InventorySort::default(), &i), format!("1767225600.{}", "ab".repeat(32)));
    }

    #[test]
    fn unknown_sorts_and_malformed_cursors_are_400() {
        assert!(parse(Some("expiry")).is_err());
        assert!(parse(Some("--owner")).is_err());
        assert_eq!(parse(Some("-owner")).unwrap().name(), "-owner");
        assert_eq!(parse(None).unwrap(), InventorySort::default());
        let owner = parse(Some("owner")).unwrap();
        for c in ["zz", "owner.zz.1.ab", "owner.61.x.ab", "owner", "", "owner.61.1.2.3"] {
            assert!(parse_cursor(owner, c).is_err(), "{c}");
        }
    }
}
