//! Detection within a fussy logger's read limit: a logger that times out on reads longer than
//! 16 registers (the `max_read = 16` that docs/configuration.md recommends for it) is still
//! detected, and a named profile's device-type check stays within the limit too.

use chrono::{Local, Utc};

use super::super::Poller;
use super::*;
use crate::config::InverterConfig;
use crate::protocol::Answer;
use crate::transport::Counters;

/// Answers reads of at most `limit` registers from `regs`, times out on longer ones.
struct Fussy {
    regs: Vec<u16>,
    limit: u16,
    counters: Counters,
    longest: u16,
}

impl Transport for Fussy {
    async fn call(&mut self, request: &Request) -> Result<Answer, transport::Error> {
        let Request::ReadHolding { addr, count } = *request else { panic!("only reads here") };
        self.longest = self.longest.max(count);
        if count > self.limit {
            return Err(transport::Error::Timeout(std::time::Duration::from_secs(5)));
        }
        let range = usize::from(addr)..usize::from(addr) + usize::from(count);
        Ok(Ok(Response::Registers(self.regs[range].to_vec())))
    }
    fn counters(&self) -> &Counters {
        &self.counters
    }
}

fn fussy(profiles: &Profiles) -> Fussy {
    let regs = crate::sim::fixture::image(&profiles.get("deye_sg01lp1").unwrap(), Utc::now());
    Fussy { regs, limit: 16, counters: Counters::default(), longest: 0 }
}

async fn three_polls(profile: &str) -> (Vec<Result<String, String>>, u16) {
    let profiles = Profiles::builtin().unwrap();
    let mut inverter = InverterConfig::new("house", "127.0.0.1", 8899, 1);
    inverter.profile = profile.into();
    inverter.max_read = Some(16);
    let mut poller = Poller::for_inverter(&inverter, &profiles).unwrap();
    let mut logger = fussy(&profiles);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let poll = poller.poll_once(&mut logger, Utc::now(), Local::now().naive_local()).await;
        outcomes.push(poll.map(|s| s.choice.profile.clone()).map_err(|e| e.to_string()));
    }
    (outcomes, logger.longest)
}

#[tokio::test]
async fn auto_detects_on_a_logger_that_takes_16_registers_at_most() {
    let (outcomes, longest) = three_polls(crate::profile::AUTO).await;
    assert!(longest <= 16, "a read of {longest} registers");
    assert!(outcomes.iter().all(|o| o.as_deref() == Ok("deye_sg01lp1")), "{outcomes:?}");
}

#[tokio::test]
async fn a_named_profile_is_checked_within_the_limit_too() {
    let (outcomes, longest) = three_polls("deye_sg01lp1").await;
    assert!(longest <= 16, "a read of {longest} registers");
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
}
