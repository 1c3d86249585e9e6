use std::sync::Arc;

use super::*;

fn ctx(dbid: u64) -> Option<HsmRequestContext> {
    Some(HsmRequestContext {
        node_id: vec![2; 33],
        dbid,
        capabilities: 0,
    })
}

#[test]
fn a_signer_that_attaches_gets_the_backlog_first_then_new_requests() {
    let stage = Stage::new();
    let a = stage.submit(None, vec![1]);
    let b = stage.submit(ctx(1), vec![2]);
    let mut att = stage.attach();
    let c = stage.submit(None, vec![3]);
    let got: Vec<u32> = (0..3)
        .map(|_| att.requests.try_recv().unwrap().request_id)
        .collect();
    assert_eq!(got, vec![a.request_id, b.request_id, c.request_id]);
    assert!(att.requests.try_recv().is_err());
}

#[test]
fn every_signer_sees_the_request_and_the_first_answer_wins() {
    let stage = Stage::new();
    let mut one = stage.attach();
    let mut two = stage.attach();
    let ticket = stage.submit(ctx(4), vec![9, 9]);
    let r1 = one.requests.try_recv().unwrap();
    let r2 = two.requests.try_recv().unwrap();
    assert_eq!(r1, r2);
    assert_eq!(
        stage.respond(r1.request_id, Ok(vec![1])),
        Delivery::Delivered
    );
    assert_eq!(stage.respond(r2.request_id, Ok(vec![2])), Delivery::Unknown);
    assert_eq!(ticket.answer.recv().unwrap(), Ok(vec![1]));
    assert_eq!(stage.pending(), 0);
}

#[test]
fn requests_are_sent_again_after_a_reconnect() {
    let stage = Stage::new();
    let first = stage.attach();
    let ticket = stage.submit(None, vec![5]);
    stage.detach(first.session);
    drop(first);
    let mut again = stage.attach();
    let staged = again.requests.try_recv().unwrap();
    assert_eq!(staged.request_id, ticket.request_id);
    assert_eq!(staged.raw, vec![5]);
    assert_eq!(stage.signers(), 1);
}

#[test]
fn a_policy_refusal_ends_the_request_with_the_signers_reason() {
    let stage = Stage::new();
    let ticket = stage.submit(None, vec![1]);
    let refusal = SignerError::from_signer_text("policy failure: unbalanced payments");
    assert_eq!(
        stage.respond(ticket.request_id, Err(refusal.clone())),
        Delivery::Delivered
    );
    assert_eq!(ticket.answer.recv().unwrap(), Err(refusal));
}

#[test]
fn a_temporary_failure_keeps_the_request_staged_for_the_next_signer() {
    let stage = Stage::new();
    let ticket = stage.submit(None, vec![1]);
    let temporary = SignerError::from_signer_text("Temporary: funding not buried yet");
    assert!(matches!(temporary, SignerError::Unavailable(_)));
    assert_eq!(
        stage.respond(ticket.request_id, Err(temporary)),
        Delivery::KeptPending
    );
    let mut next = stage.attach();
    assert_eq!(
        next.requests.try_recv().unwrap().request_id,
        ticket.request_id
    );
    assert_eq!(
        stage.respond(ticket.request_id, Ok(vec![7])),
        Delivery::Delivered
    );
}

#[test]
fn a_waiting_thread_gets_its_answer_or_gives_up_at_the_deadline() {
    let stage = Arc::new(Stage::new());
    let mut signer = stage.attach();
    let s = stage.clone();
    let waiter = std::thread::spawn(move || s.call(ctx(2), vec![4], Duration::from_secs(30)));
    let req = signer.requests.blocking_recv().unwrap();
    assert_eq!(
        stage.respond(req.request_id, Ok(vec![8])),
        Delivery::Delivered
    );
    assert_eq!(waiter.join().unwrap(), Ok(vec![8]));

    // No answer: the caller gets Unavailable; the request stays staged so a late answer is
    // still accepted (its state must still be stored), and then it is done.
    let err = stage
        .call(None, vec![6], Duration::from_millis(10))
        .unwrap_err();
    assert!(matches!(err, SignerError::Unavailable(_)));
    let late = signer.requests.try_recv().unwrap();
    assert!(stage.is_pending(late.request_id));
    assert_eq!(
        stage.respond(late.request_id, Ok(vec![1])),
        Delivery::NoWaiter
    );
    assert!(!stage.is_pending(late.request_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_a_runtime_worker_does_not_starve_the_reply_path() {
    let stage = Arc::new(Stage::new());
    let mut signer = stage.attach();
    let s = stage.clone();
    // The signer side answers from another task on the same runtime.
    tokio::spawn(async move {
        while let Some(req) = signer.requests.recv().await {
            s.respond(req.request_id, Ok(req.raw.iter().rev().copied().collect()));
        }
    });
    let s = stage.clone();
    let answer = tokio::spawn(async move { s.call(None, vec![1, 2, 3], Duration::from_secs(30)) })
        .await
        .unwrap();
    assert_eq!(answer, Ok(vec![3, 2, 1]));
}

#[test]
fn an_id_still_staged_is_never_reused_after_the_counter_wraps() {
    let stage = Stage::new();
    let old = stage.submit(None, vec![1]);
    stage.lock().next_id = u32::MAX;
    // The counter wraps past 0 to 1, which `old` still holds.
    assert_eq!(old.request_id, 1);
    let new = stage.submit(None, vec![2]);
    assert_ne!(new.request_id, old.request_id);
    assert_eq!(
        stage.respond(old.request_id, Ok(vec![9])),
        Delivery::Delivered
    );
    assert_eq!(old.answer.recv().unwrap(), Ok(vec![9]));
}

#[test]
fn a_signer_that_stops_taking_requests_is_detached() {
    let stage = Stage::new();
    let _stuck = stage.attach();
    for i in 0..(FEED + 1) {
        stage.submit(None, vec![i as u8]);
    }
    assert_eq!(stage.signers(), 0);
}

#[test]
fn closing_the_stage_releases_every_waiting_call_and_fails_later_ones() {
    let stage = Arc::new(Stage::new());
    let waiting = {
        let stage = stage.clone();
        std::thread::spawn(move || stage.call(None, vec![1], Duration::from_secs(600)))
    };
    while stage.pending() == 0 {
        std::thread::yield_now();
    }
    stage.close();
    let answer = waiting.join().unwrap();
    assert!(
        matches!(answer, Err(SignerError::Unavailable(_))),
        "{answer:?}"
    );
    let later = stage.call(None, vec![2], Duration::from_secs(600));
    assert!(matches!(later, Err(SignerError::Unavailable(_))));
    assert_eq!(stage.pending(), 0);
    assert_eq!(stage.signers(), 0);
}

#[test]
fn a_request_that_failed_for_now_is_sent_again_and_its_caller_still_gets_the_answer() {
    let stage = Arc::new(Stage::new());
    let mut att = stage.attach();
    let caller = {
        let stage = stage.clone();
        std::thread::spawn(move || stage.call(None, vec![9], Duration::from_secs(60)))
    };
    let first = att.requests.blocking_recv().unwrap();
    let kept = stage.respond(
        first.request_id,
        Err(SignerError::Unavailable("temporary: not yet".into())),
    );
    assert_eq!(kept, Delivery::KeptPending);
    stage.resend(first.request_id);
    let again = att.requests.blocking_recv().unwrap();
    assert_eq!(again.request_id, first.request_id);
    assert_eq!(again.raw, vec![9]);
    assert_eq!(
        stage.respond(again.request_id, Ok(vec![1])),
        Delivery::Delivered
    );
    assert_eq!(caller.join().unwrap().unwrap(), vec![1]);
    // Once answered, a late resend sends nothing.
    stage.resend(first.request_id);
    assert!(att.requests.try_recv().is_err());
}

#[test]
fn the_signer_watch_follows_attaches_and_detaches() {
    let stage = Stage::new();
    let mut watch = stage.watch_signers();
    assert_eq!(watch.count(), 0);
    let a = stage.attach();
    let b = stage.attach();
    assert_eq!(watch.count(), 2);
    stage.detach(a.session);
    assert_eq!(watch.count(), 1);
    // A signer whose feed is gone counts as gone once the stage looks.
    drop(b);
    assert_eq!(stage.signers(), 0);
    assert_eq!(watch.count(), 0);
}

#[test]
fn what_waits_for_a_signer_is_counted_as_it_comes_and_goes_and_a_close_leaves_nothing_waiting() {
    let stage = Stage::new();
    let waiting = stage.watch_waiting();
    assert_eq!(*waiting.borrow(), 0);
    let a = stage.submit(None, vec![1]);
    let _b = stage.submit(ctx(2), vec![2]);
    assert_eq!(*waiting.borrow(), 2);
    // A temporary failure keeps it waiting; an answer does not.
    stage.respond(a.request_id, Err(SignerError::Unavailable("later".into())));
    assert_eq!(*waiting.borrow(), 2);
    stage.respond(a.request_id, Ok(vec![7]));
    assert_eq!(*waiting.borrow(), 1);
    // A request whose caller gave up waits for nobody.
    let given_up = stage.call(None, vec![3], std::time::Duration::from_millis(10));
    assert!(given_up.is_err());
    assert_eq!(*waiting.borrow(), 1);
    assert!(!stage.is_closed());
    stage.close();
    assert!(stage.is_closed());
    assert_eq!(*waiting.borrow(), 0);
}
