//! The pipeline (relist tracker → feed → engine) against the oracle, for random watch
//! event histories where relists (`RESET` ... `SYNCED`, restarted, empty, of one
//! version of a two-version CRD, of WECs, policies and namespaces) interleave with
//! other resources' changes: every epoch the pipeline publishes must equal the oracle
//! on the state the pipeline considers current, as the watch-log rules say it (written
//! plainly in `histories::Model`): every resource as its events say, except that once every resource has
//! synced once, a resource (all versions of it) that is listing stays as it was when it
//! began listing, until its (last version's) `SYNCED`. Nothing is publishable before
//! every resource has synced once.

use bindery::Pipeline;
use proptest::prelude::*;
use serde_json::Value;

use crate::histories::{Model, Op, cases, history};

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut pipeline = Pipeline::new();
    let mut model = Model::new();
    let mut published = 0;
    for (step, op) in ops
        .into_iter()
        .chain(std::iter::once(Op::Close))
        .enumerate()
    {
        let Some(event) = op.event(step) else {
            prop_assert_eq!(pipeline.publishable(), model.complete);
            if pipeline.publishable() {
                pipeline.close_epoch();
                published += 1;
                let got: Vec<Value> = pipeline
                    .engine()
                    .bindings()
                    .iter()
                    .map(|b| b.to_json())
                    .collect();
                let oracle = model.oracle();
                let want: Vec<Value> = oracle.bindings().iter().map(|b| b.to_json()).collect();
                prop_assert_eq!(
                    &got,
                    &want,
                    "Bindings differ at step {} (epoch {})",
                    step,
                    published
                );
                prop_assert_eq!(
                    pipeline.engine().statuses(),
                    oracle.statuses(),
                    "statuses differ at step {}",
                    step
                );
            }
            continue;
        };
        model.apply(
            event.r,
            event.event_type,
            event.key.clone(),
            event.object.clone(),
        );
        pipeline
            .push(event.watch_event(step as i64))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(pipeline.all_synced(), model.synced.values().all(|s| *s));
    }
    prop_assert!(published > 0, "every history syncs every resource once");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(500), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_published_epoch_equals_the_oracle_on_the_current_state(ops in history(30, 80)) {
        run(ops)?;
    }
}
