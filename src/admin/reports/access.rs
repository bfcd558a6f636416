//! The access review: every admin user with its role and last login, every API token with its
//! role, owner scope, expiry and last use, as at the end of the period; counts of active users
//! by role and of tokens by state. Users and tokens unused during the period are marked so.

use super::{ComplianceReport, ReportContext, ReportKind, Row, Section};
use crate::ledger::{AccessToken, AccessUser, Ledger, LedgerError};

/// Builds the access review as at `to` (use in `[from, to)` decides "unused in the period").
pub async fn access_review(
    ledger: &Ledger,
    from: i64,
    to: i64,
    context: &ReportContext,
) -> Result<ComplianceReport, LedgerError> {
    let (users, tokens) = ledger.report_access().await?;
    let mut r = ComplianceReport {
        kind: ReportKind::Access,
        from,
        to,
        generated_at: context.now,
        facts: Vec::new(),
        totals: Vec::new(),
        rows: Vec::new(),
    };
    users_part(&mut r, &users);
    tokens_part(&mut r, &tokens);
    Ok(r)
}

fn users_part(r: &mut ComplianceReport, users: &[AccessUser]) {
    let active: Vec<&AccessUser> = users.iter().filter(|u| u.disabled_at.is_none_or(|d| d > r.to)).collect();
    r.total(Section::Users, "active", active.len() as i64);
    r.total(Section::Users, "disabled", (users.len() - active.len()) as i64);
    let mut roles: Vec<&str> = active.iter().map(|u| u.role.as_str()).collect();
    roles.sort_unstable();
    roles.dedup();
    for role in roles {
        r.total(Section::Users, format!("role {role}"), active.iter().filter(|u| u.role == role).count() as i64);
    }
    for u in users {
        let mut state = match u.disabled_at {
            Some(d) if d <= r.to => "disabled".to_owned(),
            _ => "active".to_owned(),
        };
        if !u.totp {
            state.push_str(", no TOTP");
        }
        if u.last_login.is_none_or(|t| t < r.from) {
            state.push_str(", no login in the period");
        }
        r.rows.push(Row {
            section: Section::Users,
            item: u.name.clone(),
            subject: u.role.clone(),
            owner: u.owner.clone().unwrap_or_default(),
            at: u.last_login,
            detail: state,
        });
    }
}

fn tokens_part(r: &mut ComplianceReport, tokens: &[AccessToken]) {
    let (from, to) = (r.from, r.to);
    let state = |t: &AccessToken| match (t.revoked_at, t.expires_at) {
        (Some(x), _) if x <= to => "revoked",
        (_, e) if e <= to => "expired",
        _ => "active",
    };
    for s in ["active", "expired", "revoked"] {
        r.total(Section::Tokens, s, tokens.iter().filter(|t| state(t) == s).count() as i64);
    }
    let rows: Vec<Row> = tokens
        .iter()
        .map(|t| {
            let mut detail = format!("{}, expires {}", state(t), super::date(t.expires_at));
            if t.last_used_at.is_none_or(|u| u < from) {
                detail.push_str(", unused in the period");
            }
            if let Some(owner) = &t.owner {
                detail.push_str(&format!(", owner scope {owner}"));
            }
            if let Some(note) = t.note.as_deref().filter(|n| !n.is_empty()) {
                detail.push_str(&format!(", note: {note}"));
            }
            Row {
                section: Section::Tokens,
                item: t.id.clone(),
                subject: t.role.clone(),
                owner: t.user_name.clone().unwrap_or_default(),
                at: t.last_used_at,
                detail,
            }
        })
        .collect();
    r.rows.extend(rows);
}
