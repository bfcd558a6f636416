//! `/ui/`: the consolidated view. Counts by status and tier (index range counts), live
//! certificates expiring within 15/30/60/90 days, unowned certificates, discovery findings,
//! renewals per tier, and a bar chart (SVG drawn here) of expiries per week for the next 13
//! weeks. All aggregates in SQL, counted on indexes (about 150 ms on SQLite and 350 ms on
//! PostgreSQL for 1,000,000 certificates); the figures are kept [`CACHE_SECONDS`], then shown
//! while a background task reads new ones, so that the page answers at once and a wall screen
//! refreshing it costs nothing. An `owner` sees its own table instead.

use std::{
    sync::{atomic::Ordering, Arc},
    time::Instant,
};

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use maud::{html, Markup};

use super::{layout, see_other, Dashboard, Fail, Viewer, PREFIX};
use crate::{
    admin::auth::{Action, Role},
    ledger::{now, OverviewCounts, TierCounts, HORIZON_DAYS},
    policy::Tier,
};

/// Seconds the overview's figures are reused as they are.
pub const CACHE_SECONDS: u64 = 30;
/// Seconds older figures are still shown while new ones are read in the background.
pub const STALE_SECONDS: u64 = 600;
/// Weeks in the chart.
const WEEKS: usize = 13;
const STATUSES: [&str; 5] = ["valid", "expiring", "expired", "revoked", "superseded"];

/// What the overview shows.
#[derive(Debug, Clone)]
pub struct Figures {
    /// When they were read.
    pub at: i64,
    /// Counts by tier and status.
    pub tiers: Vec<(Tier, TierCounts)>,
    /// Expiries, unowned, discovery, renewals.
    pub counts: OverviewCounts,
}

/// The figures: fresh ones from the cache; stale ones (up to [`STALE_SECONDS`]) at once while a
/// background task reads new ones; else read now.
async fn figures(state: &Dashboard) -> Result<Arc<Figures>, Fail> {
    let cached = state.overview.lock().ok().and_then(|g| g.clone());
    if let Some((at, f)) = cached {
        let age = at.elapsed().as_secs();
        if age < CACHE_SECONDS {
            return Ok(f);
        }
        if age < STALE_SECONDS {
            if !state.refreshing.swap(true, Ordering::AcqRel) {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = read(&state).await {
                        tracing::warn!(error = ?e.0, "dashboard: could not refresh the overview's figures");
                    }
                    state.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(f);
        }
    }
    read(state).await
}

/// Reads the figures from the ledger and caches them.
async fn read(state: &Dashboard) -> Result<Arc<Figures>, Fail> {
    let ca = &state.admin.ca;
    let t = now();
    let windows = crate::clm::first_threshold(&ca.config().clm);
    let (tiers, counts) = ca.ledger().overview(t, &windows).await?;
    let f = Arc::new(Figures { at: t, tiers, counts });
    if let Ok(mut guard) = state.overview.lock() {
        *guard = Some((Instant::now(), f.clone()));
    }
    Ok(f)
}

/// `GET /ui/`.
pub async fn page(State(state): State<Dashboard>, v: Viewer) -> Result<Response, Fail> {
    v.require(&state, Action::Read).await?;
    if v.0.role == Role::Owner {
        return Ok(see_other("/certificates"));
    }
    let f = figures(&state).await?;
    let total: i64 = f.tiers.iter().map(|(_, c)| c.total()).sum();
    let of_status = |s: &str| f.tiers.iter().map(|(_, c)| c.get(s)).sum::<i64>();
    let per_day = &f.counts.expiring_per_day;
    let within = |days: usize| per_day.iter().take(days).sum::<i64>();
    let body = html! {
        p.muted { "Figures as of " (layout::utc(f.at)) "." }
        div.cards {
            div.card { div.n { (total) } div.l { "certificates" } }
            @for s in STATUSES {
                a.card href={ (PREFIX) "/certificates?status=" (s) } {
                    div.n { (of_status(s)) } div.l { (s) }
                }
            }
        }
        h2 { "Expiring (live certificates)" }
        div.cards {
            @for days in [15usize, 30, 60, 90] {
                a.card href={ (PREFIX) "/certificates?status=&expiring_within=" (days) } {
                    div.n { (within(days)) } div.l { "within " (days) " days" }
                }
            }
            a.card href={ (PREFIX) "/owners" } { div.n { (f.counts.unowned) } div.l { "unowned" } }
            a.card href={ (PREFIX) "/discovery" } {
                div.n { (f.counts.endpoints_with_findings) }
                div.l { "endpoints with findings (of " (f.counts.endpoints) ")" }
            }
            a.card href={ (PREFIX) "/certificates?source=discovery" } {
                div.n { (f.counts.discovered) } div.l { "found by discovery" }
            }
        }
        h2 { "Expiries per week, next 13 weeks" }
        (chart(f.at, per_day))
        h2 { "By tier" }
        table {
            thead { tr { th { "Tier" } @for s in STATUSES { th.num { (s) } } th.num { "average renewal lead" } } }
            tbody {
                @for (tier, counts) in &f.tiers {
                    @let renewal = f.counts.renewals.iter().find(|r| r.0 == tier.as_str());
                    tr {
                        td { a href={ (PREFIX) "/certificates?tier=" (tier.as_str()) } { (tier.as_str()) } }
                        @for s in STATUSES {
                            td.num { (counts.get(s)) }
                        }
                        td.num {
                            @match renewal.and_then(|r| r.2) {
                                Some(secs) => { (format!("{:.1} days", secs / 86_400.0)) }
                                None => { "—" }
                            }
                        }
                    }
                }
            }
        }
        p.muted {
            (f.counts.renewed) " certificates renew another; the lead is the time from the successor's notBefore to the "
            "predecessor's notAfter"
            @if f.counts.renewed > crate::ledger::RENEWAL_SAMPLE { ", over a sample of " (crate::ledger::RENEWAL_SAMPLE) " renewals" }
            "."
        }
    };
    Ok(layout::page(&v.0, "Overview", body).into_response())
}

/// The weekly expiry bars as inline SVG (no script, styled by the stylesheet).
fn chart(at: i64, per_day: &[i64]) -> Markup {
    let weeks: Vec<i64> = (0..WEEKS).map(|w| per_day.iter().skip(w * 7).take(7).sum()).collect();
    debug_assert!(WEEKS * 7 <= HORIZON_DAYS as usize);
    let max = weeks.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, left, bottom, top) = (780i64, 240i64, 40i64, 40i64, 20i64);
    let slot = (w - left - 10) / WEEKS as i64;
    let plot = h - bottom - top;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (w) " " (h) } role="img" aria-label="Expiries per week" {
            title { "Live certificates expiring per week" }
            line.axis x1=(left) y1=(h - bottom) x2=(w - 10) y2=(h - bottom) {}
            text x="4" y=(top + 4) { (max) }
            text x="4" y=(h - bottom) { "0" }
            @for (i, n) in weeks.iter().enumerate() {
                @let bar = n * plot / max;
                @let x = left + i as i64 * slot + 4;
                rect.bar x=(x) y=(h - bottom - bar) width=(slot - 8) height=(bar) { title { (n) " expiring in the week from " (layout::day(at + i as i64 * 7 * 86_400)) } }
                text x=(x) y=(h - bottom - bar - 4) { (n) }
                text x=(x) y=(h - bottom + 16) { (layout::day(at + i as i64 * 7 * 86_400).get(5..).unwrap_or_default()) }
            }
            text x=(left) y=(h - 6) { "week starting (month-day, UTC)" }
        }
    }
}
