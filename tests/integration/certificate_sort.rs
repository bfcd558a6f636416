//! The certificate list's sort (issue 26): every key in both directions through the API, paged
//! two rows at a time by cursor, gives the same rows in the same order as one large page, in
//! the key's order; a cursor of another sort and an unknown key are 400 problem documents; the
//! dashboard's column headers sort on the server and keep the filters, and its next-page link
//! keeps the sort.

use axum::http::{Method, StatusCode};
use privca::admin::auth::Role;

use crate::{
    admin_client::{issue, router, send, session, token, With},
    harness::{both_databases, Db, TestCa},
};

both_databases!(every_sort_pages_stably_in_its_order);

const KEYS: [&str; 6] = ["not_after", "issued_at", "serial", "owner", "tier", "status"];

async fn every_sort_pages_stably_in_its_order(db: Db) {
    let Some(t) = TestCa::new(db).await else { return };
    let api = router(&t);
    let admin = token(&t, Role::Admin, None).await;
    let mut serials = Vec::new();
    for (i, owner) in ["team-b", "team-a", "team-c", "team-a", "team-b", "team-c", "team-a"].iter().enumerate() {
        serials.push(issue(&t, &format!("s{i}.sort.example.test"), owner).await);
    }
    // Tiers and statuses that differ: two internal, one network-critical; one revoked.
    for (serial, tier) in [(&serials[0], "internal"), (&serials[3], "network-critical"), (&serials[5], "internal")] {
        let body = serde_json::json!({ "tier": tier }).to_string();
        let a = send(
            &api,
            Method::PATCH,
            &format!("/api/v1/inventory/{serial}"),
            With { token: Some(&admin), json: Some(body), ..Default::default() },
        )
        .await;
        assert!(a.status.is_success(), "{}", a.text());
    }
    let a = send(
        &api,
        Method::POST,
        &format!("/api/v1/certificates/{}/revoke", serials[2]),
        With { token: Some(&admin), json: Some("{\"reason\":\"superseded\"}".into()), ..Default::default() },
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());

    let get = |path: String| {
        let api = api.clone();
        let admin = admin.clone();
        async move {
            let a = send(&api, Method::GET, &path, With { token: Some(&admin), ..Default::default() }).await;
            assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text());
            a.json()
        }
    };
    let mut total = None;
    for key in KEYS {
        for sort in [key.to_owned(), format!("-{key}")] {
            let whole = get(format!("/api/v1/certificates?sort={sort}&limit=500")).await;
            let whole: Vec<serde_json::Value> = whole["items"].as_array().unwrap().clone();
            assert!(whole.len() >= serials.len(), "{sort}");
            assert_eq!(*total.get_or_insert(whole.len()), whole.len(), "every sort lists every certificate");
            // In the key's order (then notAfter, fingerprint), in the asked direction.
            let field = match key {
                "issued_at" => "not_before",
                k => k,
            };
            for pair in whole.windows(2) {
                let k = |v: &serde_json::Value| {
                    let primary = match &v[field] {
                        serde_json::Value::Number(n) => format!("{:020}", n.as_i64().unwrap()),
                        other => other.as_str().unwrap().to_owned(),
                    };
                    (primary, v["not_after"].as_i64().unwrap(), v["fingerprint"].as_str().unwrap().to_owned())
                };
                let (a, b) = (k(&pair[0]), k(&pair[1]));
                if sort.starts_with('-') {
                    assert!(a > b, "{sort}: {a:?} then {b:?}");
                } else {
                    assert!(a < b, "{sort}: {a:?} then {b:?}");
                }
            }
            // Two at a time by cursor: the same rows, same order, none twice.
            let mut paged = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..100 {
                let mut path = format!("/api/v1/certificates?sort={sort}&limit=2");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = get(path).await;
                paged.extend(page["items"].as_array().unwrap().iter().map(|i| i["fingerprint"].clone()));
                match page["next_cursor"].as_str() {
                    Some(c) => {
                        if key != "not_after" || sort.starts_with('-') {
                            assert!(c.starts_with(&format!("{sort}.")), "the cursor names its sort: {c}");
                        }
                        cursor = Some(c.to_owned());
                    }
                    None => break,
                }
            }
            let expected: Vec<serde_json::Value> = whole.iter().map(|i| i["fingerprint"].clone()).collect();
            assert_eq!(paged, expected, "{sort}: paging by cursor");
        }
    }

    // A filtered, sorted list: team-a's, by serial descending.
    let page = get("/api/v1/certificates?owner=team-a&sort=-serial".into()).await;
    let got: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["serial"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = [1, 3, 6].iter().map(|&i| serials[i].as_str()).collect();
    want.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(got, want);

    // Refusals: problem documents, 400.
    let first = get("/api/v1/certificates?sort=owner&limit=1".into()).await;
    let owner_cursor = first["next_cursor"].as_str().unwrap().to_owned();
    for path in [
        "/api/v1/certificates?sort=expiry".to_owned(),
        "/api/v1/certificates?sort=--owner".to_owned(),
        format!("/api/v1/certificates?sort=-owner&cursor={owner_cursor}"),
        format!("/api/v1/certificates?cursor={owner_cursor}"),
        "/api/v1/certificates?sort=owner&cursor=owner.zz.1.ab".to_owned(),
    ] {
        let a = send(&api, Method::GET, &path, With { token: Some(&admin), ..Default::default() }).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text());
        assert_eq!(a.header("content-type"), "application/problem+json", "{path}");
    }

    // The dashboard: headers link to their sort (keeping the filters), the active one marked.
    let (cookie, _) = session(&t, "olga", "operator", None).await;
    let ui = |path: &str| {
        let (api, cookie, path) = (api.clone(), cookie.clone(), path.to_owned());
        async move { send(&api, Method::GET, &path, With { cookie: Some(cookie), ..Default::default() }).await }
    };
    let a = ui("/ui/certificates?owner=team-a&sort=-owner").await;
    assert_eq!(a.status, StatusCode::OK);
    let html = a.text();
    assert!(html.contains("aria-sort=\"descending\""), "{html}");
    assert!(html.contains("href=\"/ui/certificates?owner=team-a&amp;sort=owner\""), "toggles the active column");
    assert!(html.contains("href=\"/ui/certificates?owner=team-a&amp;sort=serial\""), "another column, same filter");
    assert!(html.contains("name=\"sort\" value=\"-owner\""), "the filter form keeps the sort");
    let a = ui("/ui/certificates?sort=status").await;
    assert_eq!(a.status, StatusCode::OK);
    let page = a.text();
    let tbody = &page[page.find("<tbody>").unwrap()..];
    let statuses: Vec<usize> =
        ["expired", "revoked", "valid"].iter().filter_map(|s| tbody.find(&format!(">{s}<"))).collect();
    assert!(statuses.len() >= 2, "{tbody}");
    assert!(statuses.windows(2).all(|w| w[0] < w[1]), "status order on the page: {statuses:?}");
    let a = ui("/ui/certificates?sort=sideways").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // More rows than a page: the next link carries the sort and its cursor.
    for i in 0..privca::admin::dashboard::certificates::PAGE {
        issue(&t, &format!("p{i}.sort.example.test"), "team-d").await;
    }
    let a = ui("/ui/certificates?sort=-issued_at").await;
    let html = a.text();
    let next = html.split("rel=\"next\" href=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert!(next.contains("sort=-issued_at&cursor=-issued_at."), "{next}");
    let a = ui(&next).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
}
