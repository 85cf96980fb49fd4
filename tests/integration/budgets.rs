//! DESIGN "Budgets": table round trips and provider calls per request,
//! counted on the real path (DynamoDB Local, the test IdP), not guessed.

use integration_tests::*;

async fn counted(
    app: &App,
    request: impl std::future::Future<Output = Reply>,
) -> (Reply, (usize, usize)) {
    app.table_calls.reset();
    let reply = request.await;
    (reply, app.table_calls.read())
}

#[tokio::test]
async fn each_path_stays_within_its_round_trip_budget() {
    let app = App::spawn().await;
    let mut browser = Browser::new();
    let mut idp = Browser::new();

    // authorize: rate-limit counter and transaction write together.
    let (start, (calls, trips)) = counted(&app, browser.get(&app.url("/auth/login"))).await;
    assert_eq!(start.status, StatusCode::FOUND);
    assert_eq!((calls, trips), (2, 1), "authorize");

    // callback: counter and transaction consumption together, plus one token call.
    let callback = sign_in_at_idp(
        &mut idp,
        &start.location().unwrap(),
        "alice",
        "alice-password",
    )
    .await
    .unwrap();
    let before = app.idp_stats().await;
    let (reply, (calls, trips)) = counted(&app, browser.get(&callback)).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!((calls, trips), (2, 1), "callback");
    let after = app.idp_stats().await;
    assert_eq!(
        after["authorization_code_grants"].as_u64().unwrap()
            - before["authorization_code_grants"].as_u64().unwrap(),
        1
    );

    // session GET: revocation read and counter together, no provider call.
    let (reply, (calls, trips)) = counted(&app, browser.get(&app.url("/auth/session"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!((calls, trips), (2, 1), "session");
    assert_eq!(app.idp_stats().await, after, "session made a provider call");

    // refresh: 1 (counter + revocation) + claim + store result; one refresh grant.
    let (reply, (calls, trips)) =
        counted(&app, browser.post_as_site(&app, "/auth/refresh", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!((calls, trips), (4, 3), "refresh");
    assert_eq!(app.idp_stats().await["refresh_token_grants"], 1);

    // logout: counter and revocation record together (the provider's
    // revocation call runs alongside them).
    let (reply, (calls, trips)) =
        counted(&app, browser.post_as_site(&app, "/auth/logout", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!((calls, trips), (2, 1), "logout");
    assert_eq!(app.idp_stats().await["revocations"], 1);
    println!("round trips: authorize 1, callback 1 (+1 token call), session 1, refresh 3 (+1 refresh grant), logout 1 (+1 revocation)");
}
