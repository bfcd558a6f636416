//! The page shell every dashboard page is drawn in (navigation by role, the logout form) and
//! the small pieces pages share: dates, status badges, the hidden CSRF field, error pages.

use maud::{html, Markup, DOCTYPE};

use super::{CSRF_FIELD, PREFIX};
use crate::admin::{
    auth::{Action, Principal},
    problem::Problem,
};

/// A full page titled `title` for `p`, with `body`.
pub fn page(p: &Principal, title: &str, body: Markup) -> Markup {
    let links: [(&str, &str, Action); 8] = [
        ("/", "Overview", Action::Read),
        ("/certificates", "Certificates", Action::Read),
        ("/keystore", "New key (PKCS#12)", Action::Operate),
        ("/approvals", "Approvals", Action::Read),
        ("/discovery", "Discovery", Action::Read),
        ("/owners", "Owners", Action::Read),
        ("/audit", "Audit log", Action::Audit),
        ("/access", "Users and tokens", Action::Audit),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href={ (PREFIX) "/" } { "privca" }
                    nav {
                        @for (path, label, action) in links {
                            @if p.role.allows(action) {
                                a href={ (PREFIX) (path) } { (label) }
                            }
                        }
                    }
                    form.logout method="post" action={ (PREFIX) "/logout" } {
                        (csrf(p))
                        span.who { (p.name) " (" (p.role) ")" }
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The `<head>` of every page.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · privca" }
            link rel="stylesheet" href={ (PREFIX) "/static/app.css" };
        }
    }
}

/// A page without navigation (login, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href={ (PREFIX) "/" } { "privca" } }
                main.narrow {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The page of a refusal or error.
pub fn error_page(p: &Problem) -> Markup {
    bare(
        p.title,
        html! {
            p.error { (p.detail) }
            p { a href={ (PREFIX) "/" } { "Back to the overview" } }
        },
    )
}

/// The hidden field carrying `p`'s CSRF token.
pub fn csrf(p: &Principal) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(p.csrf.as_deref().unwrap_or_default()); }
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn utc(unix: i64) -> String {
    crate::clm::templates::utc(unix)
}

/// `YYYY-MM-DD`.
pub fn day(unix: i64) -> String {
    utc(unix).chars().take(10).collect()
}

/// Whole days from `now` to `t` (negative when past).
pub fn days_from(now: i64, t: i64) -> i64 {
    (t - now).div_euclid(86_400)
}

/// A status badge.
pub fn status(s: &str) -> Markup {
    html! { span class={ "badge " (s) } { (s) } }
}

/// `/ui/certificates/<id>`.
pub fn cert_link(id: &str, text: &str) -> Markup {
    html! { a href={ (PREFIX) "/certificates/" (id) } { (text) } }
}
