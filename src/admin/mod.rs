//! The admin surface: API, authentication, dashboard and reports.

pub mod reports;
