use super::testing::{Place, on_every_backend, tenant};
use super::*;

fn a_tenant_registers_once_and_gets_its_invite_codes(place: &Place) {
    let store = place.open();
    let minted = store.register(tenant(2), None, 3).unwrap();
    assert_eq!(minted.len(), 3);
    assert!(matches!(
        store.register(tenant(2), None, 3),
        Err(Error::AlreadyExists(_))
    ));
    let owned = store.invites_owned_by(&[2; 33]).unwrap();
    assert_eq!(owned.len(), 3);
    assert!(owned.iter().all(|(_, redeemed)| !redeemed));
    assert_eq!(store.devices(&[2; 33]).unwrap().len(), 1);
}

fn an_invite_code_redeems_once_and_unknown_codes_are_refused(place: &Place) {
    let store = place.open();
    let code = store.create_invites(1).unwrap().remove(0);
    assert!(matches!(
        store.register(tenant(2), Some("nope-nope"), 0),
        Err(Error::NotFound(_))
    ));
    store.register(tenant(2), Some(&code), 0).unwrap();
    assert!(matches!(
        store.register(tenant(3), Some(&code), 0),
        Err(Error::FailedPrecondition(_))
    ));
    // The failed registration left nothing behind.
    assert!(store.tenant(&[3; 33]).unwrap().is_none());
    let all = store.invites().unwrap();
    assert_eq!(
        all[0].1.redeemed_by.as_deref(),
        Some(hex::encode([2u8; 33]).as_str())
    );
}

fn concurrent_registrations_with_one_code_redeem_it_once(place: &Place) {
    let store = place.open();
    let code = store.create_invites(1).unwrap().remove(0);
    let handles: Vec<_> = (2..10u8)
        .map(|n| {
            let store = store.clone();
            let code = code.clone();
            std::thread::spawn(move || store.register(tenant(n), Some(&code), 0).is_ok())
        })
        .collect();
    let ok = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|registered| *registered)
        .count();
    assert_eq!(ok, 1, "exactly one registration may redeem the code");
    assert_eq!(store.tenants().unwrap().len(), 1);
}

fn state_survives_reopening_and_the_network_is_fixed(place: &Place) {
    {
        let store = place.open();
        store.register(tenant(2), None, 2).unwrap();
        store.create_invites(4).unwrap();
        assert_eq!(
            store.upgrade_signer(&[2; 33], "v26.06", None).unwrap(),
            "v25.05"
        );
    }
    let store = place.open();
    assert_eq!(
        store.tenant(&[2; 33]).unwrap().unwrap().signer_version,
        "v26.06"
    );
    assert_eq!(store.invites().unwrap().len(), 6);
    drop(store);
    let err = place.open_for(Some("bitcoin")).err().unwrap();
    assert!(matches!(err, OpenError::WrongNetwork(_)));
}

#[test]
fn a_second_opener_is_told_the_database_is_locked() {
    let place = Place::redb();
    let _store = place.open();
    let err = place.open_for(None).err().unwrap();
    assert!(matches!(err, OpenError::Locked));
}

fn only_the_newest_rejection_reports_are_kept(place: &Place) {
    let store = place.open();
    for i in 0..5 {
        let record = RejectionRecord {
            node_id: String::new(),
            reporter: "nobody".into(),
            from_tenant: false,
            msg: format!("report {i}"),
            git_version: String::new(),
            request_raw: String::new(),
            received_at: 0,
        };
        store.add_rejection(&record, 3).unwrap();
    }
    let kept: Vec<String> = store
        .rejections()
        .unwrap()
        .into_iter()
        .map(|r| r.msg)
        .collect();
    assert_eq!(kept, ["report 2", "report 3", "report 4"]);
}

fn a_revoked_device_stays_revoked_across_a_reopen_and_an_unknown_one_is_not_found(place: &Place) {
    {
        let store = place.open();
        store.register(tenant(4), None, 0).unwrap();
        let first = store.revoke_device(&[4; 33], "default", 100).unwrap();
        assert_eq!(first.revoked_at, Some(100));
        // Revoking again keeps the first time.
        let again = store.revoke_device(&[4; 33], "default", 200).unwrap();
        assert_eq!(again.revoked_at, Some(100));
        assert!(matches!(
            store.revoke_device(&[4; 33], "nobody-here", 100),
            Err(Error::NotFound(_))
        ));
    }
    let store = place.open();
    assert_eq!(
        store.revoked_devices().unwrap(),
        vec![([4; 33], "default".to_string())]
    );
}

fn an_export_is_begun_once_and_kept_across_a_reopen(place: &Place) {
    let store = place.open();
    assert!(matches!(
        store.begin_export(&[4; 33], "t0"),
        Err(Error::NotFound(_))
    ));
    store.register(tenant(4), None, 0).unwrap();
    let first = store.begin_export(&[4; 33], "t1").unwrap();
    assert_eq!(first.state, ExportState::Exporting);
    // A second call keeps the first token: one export, one URL.
    assert_eq!(store.begin_export(&[4; 33], "t2").unwrap(), first);
    store
        .update_export(&[4; 33], &|r| r.state = ExportState::Exported)
        .unwrap();
    drop(store);
    let store = place.open();
    let kept = store.export(&[4; 33]).unwrap().unwrap();
    assert_eq!(
        (kept.state, kept.token.as_str()),
        (ExportState::Exported, "t1")
    );
    assert_eq!(store.exports().unwrap().len(), 1);
    assert_eq!(store.export(&[5; 33]).unwrap(), None);
}

on_every_backend!(
    a_tenant_registers_once_and_gets_its_invite_codes,
    an_invite_code_redeems_once_and_unknown_codes_are_refused,
    concurrent_registrations_with_one_code_redeem_it_once,
    state_survives_reopening_and_the_network_is_fixed,
    only_the_newest_rejection_reports_are_kept,
    a_revoked_device_stays_revoked_across_a_reopen_and_an_unknown_one_is_not_found,
    an_export_is_begun_once_and_kept_across_a_reopen,
);
