//! What the agent sends to the API server, checked on the wire with kube's own mock pattern
//! (a tower-test `mock::pair` service behind `kube::Client`, as kube's mock_tests.rs does):
//! paths, query parameters, content types and bodies of server-side apply, adoption at
//! start, Events; and scripted failures (409 from another manager, 403 at start, 5xx).

use http::{Request, Response, StatusCode};
use kube::client::Body;
use node_doctor_agent::conditions::{CondState, Status};
use node_doctor_agent::events::EventQueue;
use node_doctor_agent::metrics::Metrics;
use node_doctor_agent::publish::{self, Desired, EventSpec, Kube, PublishError};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn kube() -> (Kube, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (
        Kube {
            client: kube::Client::new(svc, "default"),
            node: "n1".into(),
        },
        handle,
    )
}

fn respond(send: tower_test::mock::SendResponse<Response<Body>>, code: u16, body: Value) {
    let mut r = Response::new(Body::from(serde_json::to_vec(&body).unwrap()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    send.send_response(r);
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("scripted {reason}"), "reason": reason, "code": code})
}

async fn body_of(req: Request<Body>) -> (http::request::Parts, Value) {
    let (parts, body) = req.into_parts();
    let bytes = body.collect_bytes().await.unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (parts, v)
}

fn cond(t: &str, s: Status, reason: &str, at: u64) -> CondState {
    CondState {
        type_: t.into(),
        status: s,
        reason: reason.into(),
        message: format!("{t} message"),
        last_transition_ms: at,
        clean_runs: 0,
        unknown_runs: 0,
        last_problem_ms: None,
        boot_id: None,
    }
}

fn node_json() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "0f6a7c1e-node-uid"},
        "status": {
            "nodeInfo": {"bootID": "boot-1"},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastTransitionTime": "2026-11-20T10:00:00Z", "lastHeartbeatTime": "2026-12-01T10:00:00Z"},
                {"type": "ZombieProcesses", "status": "True", "reason": "UnreapedZombies", "message": "500 (runner) holds 40 zombies", "lastTransitionTime": "2026-11-30T08:00:00Z", "lastHeartbeatTime": "2026-12-01T10:00:00Z"}
            ]
        }
    })
}

#[tokio::test]
async fn server_side_apply_of_nodes_status_is_what_a_real_api_server_takes() {
    let (k, mut h) = kube();
    let conds = vec![cond(
        "ZombieProcesses",
        Status::True,
        "UnreapedZombies",
        1_795_356_000_000,
    )];
    let call = tokio::spawn({
        let k = k.clone();
        async move {
            k.apply("node-doctor", true, &conds, 1_795_356_060_000)
                .await
        }
    });
    let (req, send) = h.next_request().await.expect("a request");
    let (parts, body) = body_of(req).await;
    assert_eq!(parts.method, http::Method::PATCH);
    assert_eq!(parts.uri.path(), "/api/v1/nodes/n1/status");
    let q = parts.uri.query().unwrap();
    assert!(
        q.contains("fieldManager=node-doctor") && q.contains("force=true"),
        "{q}"
    );
    assert_eq!(
        parts.headers["content-type"],
        "application/apply-patch+yaml"
    );
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["kind"], "Node");
    assert_eq!(body["metadata"]["name"], "n1");
    let c = &body["status"]["conditions"][0];
    assert_eq!(c["type"], "ZombieProcesses");
    assert_eq!(c["status"], "True");
    assert_eq!(c["reason"], "UnreapedZombies");
    assert_eq!(c["lastTransitionTime"], "2026-11-22T14:00:00Z");
    assert_eq!(c["lastHeartbeatTime"], "2026-11-22T14:01:00Z");
    assert_eq!(
        body["status"].as_object().unwrap().len(),
        1,
        "only conditions: nothing else of the status is claimed"
    );
    respond(send, 200, node_json());
    assert_eq!(call.await.unwrap(), Ok(()));

    // The NPD manager applies without force; another manager's field is a 409.
    let conds = vec![cond("KernelDeadlock", Status::False, "NoKernelDeadlock", 0)];
    let call = tokio::spawn({
        let k = k.clone();
        async move { k.apply("node-doctor-npd", false, &conds, 0).await }
    });
    let (req, send) = h.next_request().await.unwrap();
    let q = req.uri().query().unwrap().to_string();
    assert!(
        q.contains("fieldManager=node-doctor-npd") && !q.contains("force"),
        "{q}"
    );
    respond(send, 409, status(409, "Conflict"));
    assert!(matches!(
        call.await.unwrap(),
        Err(PublishError::Conflict(_))
    ));
}

#[tokio::test]
async fn errors_are_classified() {
    let (k, mut h) = kube();
    for (code, want) in [
        (403, "forbidden"),
        (404, "not_found"),
        (500, "error"),
        (503, "error"),
    ] {
        let call = tokio::spawn({
            let k = k.clone();
            async move { k.get_node().await }
        });
        let (_, send) = h.next_request().await.unwrap();
        respond(send, code, status(code, "Scripted"));
        assert_eq!(call.await.unwrap().unwrap_err().label(), want, "{code}");
    }
}

#[tokio::test]
async fn adoption_reads_the_nodes_conditions() {
    let (k, mut h) = kube();
    let call = tokio::spawn(async move { k.get_node().await });
    let (req, send) = h.next_request().await.unwrap();
    assert_eq!(req.method(), http::Method::GET);
    assert_eq!(req.uri().path(), "/api/v1/nodes/n1");
    respond(send, 200, node_json());
    let n = call.await.unwrap().unwrap();
    assert_eq!(n.uid.as_deref(), Some("0f6a7c1e-node-uid"));
    assert_eq!(n.boot_id.as_deref(), Some("boot-1"));
    let z = n
        .conditions
        .iter()
        .find(|c| c.type_ == "ZombieProcesses")
        .unwrap();
    assert_eq!(
        (z.status.as_str(), z.reason.as_str()),
        ("True", "UnreapedZombies")
    );
    assert_eq!(
        z.last_transition_ms,
        node_doctor_core::time::parse_rfc3339_prefix("2026-11-30T08:00:00Z").unwrap()
    );
}

#[tokio::test]
async fn events_are_events_k8s_io_v1_on_the_node() {
    let (k, mut h) = kube();
    let ev = EventSpec {
        type_: "Warning",
        reason: "OOMKilling".into(),
        action: "Logged",
        note: "x".repeat(3000),
        key: "kernel-log/rule:oom-kill/n:java".into(),
        at_ms: 1_795_356_000_123,
    };
    let body = publish::event_body("n1", Some("0f6a7c1e-node-uid"), "node-doctor-abcde", 7, &ev);
    let call = tokio::spawn(async move { k.post_event(&body).await });
    let (req, send) = h.next_request().await.unwrap();
    let (parts, body) = body_of(req).await;
    assert_eq!(parts.method, http::Method::POST);
    assert_eq!(
        parts.uri.path(),
        "/apis/events.k8s.io/v1/namespaces/default/events"
    );
    assert_eq!(parts.headers["content-type"], "application/json");
    assert_eq!(body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(body["kind"], "Event");
    assert_eq!(body["eventTime"], "2026-11-22T14:00:00.123000Z");
    assert_eq!(body["reportingController"], "node-doctor");
    assert_eq!(body["reportingInstance"], "node-doctor-abcde");
    assert_eq!(body["regarding"]["kind"], "Node");
    assert_eq!(body["regarding"]["uid"], "0f6a7c1e-node-uid");
    assert_eq!(
        (
            body["type"].as_str(),
            body["reason"].as_str(),
            body["action"].as_str()
        ),
        (Some("Warning"), Some("OOMKilling"), Some("Logged"))
    );
    assert!(body["note"].as_str().unwrap().len() <= 1024);
    assert!(
        body["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("n1.nd.")
    );
    respond(send, 201, body.clone());
    assert_eq!(call.await.unwrap(), Ok(()));
}

/// The publisher task: adoption retried through a 403 at start, nothing applied before the
/// engine says the first evaluation is done, then an apply; a 5xx is retried.
#[tokio::test(start_paused = true)]
async fn the_publisher_adopts_first_retries_and_writes_only_when_ready() {
    let (k, mut h) = kube();
    let (desired_tx, desired_rx) = watch::channel(Desired::default());
    let (adopt_tx, mut adopt_rx) = mpsc::channel(1);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::new("test", "test"));
    let task = tokio::spawn(publish::publisher(
        k,
        desired_rx,
        adopt_tx,
        metrics.clone(),
        300_000,
        stop_rx,
    ));

    // 403 at start (RBAC not yet bound), then the Node.
    let (req, send) = h.next_request().await.unwrap();
    assert_eq!(req.method(), http::Method::GET);
    respond(send, 403, status(403, "Forbidden"));
    let (req, send) = h.next_request().await.unwrap();
    assert_eq!(req.method(), http::Method::GET);
    respond(send, 200, node_json());
    let adopted = adopt_rx.recv().await.unwrap();
    assert!(
        adopted
            .conditions
            .iter()
            .any(|c| c.type_ == "ZombieProcesses")
    );

    // Not ready: nothing is written, however long we wait.
    desired_tx
        .send(Desired {
            own: vec![cond("ZombieProcesses", Status::True, "UnreapedZombies", 5)],
            npd: vec![],
            ready: false,
        })
        .unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(10), h.next_request())
            .await
            .is_err(),
        "no write before the first full evaluation"
    );

    // Ready: one apply; a 503 is retried with backoff.
    desired_tx
        .send(Desired {
            own: vec![cond("ZombieProcesses", Status::True, "UnreapedZombies", 5)],
            npd: vec![],
            ready: true,
        })
        .unwrap();
    let (req, send) = h.next_request().await.unwrap();
    assert_eq!(req.method(), http::Method::PATCH);
    respond(send, 503, status(503, "ServiceUnavailable"));
    let (req, send) = h.next_request().await.unwrap();
    assert_eq!(req.method(), http::Method::PATCH, "retried");
    respond(send, 200, node_json());
    // Nothing changed: no further write until the heartbeat.
    assert!(
        tokio::time::timeout(Duration::from_secs(60), h.next_request())
            .await
            .is_err()
    );
    let text = metrics.encode();
    assert!(
        text.contains(
            r#"node_doctor_publish_requests_total{target="conditions",result="error"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"node_doctor_publish_requests_total{target="node",result="forbidden"} 1"#),
        "{text}"
    );
    task.abort();
}

/// The event queue, API server down: bounded, the oldest dropped and counted; drained in
/// order when it is back.
#[tokio::test(start_paused = true)]
async fn events_wait_in_a_bounded_queue_while_the_api_server_is_down() {
    let (k, mut h) = kube();
    let queue = Arc::new(Mutex::new(EventQueue::new(3, 0)));
    for i in 0..5u64 {
        queue.lock().unwrap().push(
            EventSpec {
                type_: "Warning",
                reason: "OOMKilling".into(),
                action: "Logged",
                note: format!("event {i}"),
                key: format!("k{i}"),
                at_ms: i,
            },
            false,
        );
    }
    assert_eq!(
        queue.lock().unwrap().take_dropped(),
        2,
        "events 0 and 1 dropped"
    );
    let metrics = Arc::new(Metrics::new("test", "test"));
    let (_stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(publish::event_sender(
        k,
        queue.clone(),
        metrics,
        "pod".into(),
        stop_rx,
    ));
    // The sender first asks for the Node's uid (refused: it goes on without).
    let (req, send) = h.next_request().await.unwrap();
    assert_eq!(req.method(), http::Method::GET);
    respond(send, 500, status(500, "InternalError"));
    // Down: the first event is retried, not lost.
    let (req, send) = h.next_request().await.unwrap();
    let (_, b) = body_of(req).await;
    assert_eq!(b["note"], "event 2");
    respond(send, 500, status(500, "InternalError"));
    let mut notes = Vec::new();
    for _ in 0..20 {
        let (req, send) = h.next_request().await.unwrap();
        if req.method() == http::Method::GET {
            respond(send, 500, status(500, "InternalError"));
            continue;
        }
        let (_, b) = body_of(req).await;
        notes.push(b["note"].as_str().unwrap().to_string());
        respond(send, 201, b);
        if notes.len() == 3 {
            break;
        }
    }
    assert_eq!(notes, vec!["event 2", "event 3", "event 4"]);
    for _ in 0..100 {
        if queue.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(queue.lock().unwrap().is_empty());
    task.abort();
}
