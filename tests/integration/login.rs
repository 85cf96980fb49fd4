use integration_tests::*;

#[tokio::test]
async fn whole_login_through_http_shows_the_user_and_no_token() {
    let app = App::spawn().await;
    let mut session = login(&app, "alice", "alice-password").await;
    assert_eq!(session.callback.status, StatusCode::FOUND, "{}", session.callback.body);
    assert_eq!(session.callback.location().unwrap(), app.url("/welcome"));
    let me = session.browser.get(&app.url("/auth/session")).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    let json = me.json();
    assert_eq!(json["authenticated"], true);
    assert_eq!(json["user"]["email"], "alice@example.com");
    assert_eq!(json["user"]["name"], "Alice Example");
    println!("{json}");
}
