//! A fleet in one process: `simulate --fleet`'s loggers behind one port, told apart by the V5
//! serial, over real TCP; and the service polling two of them from a config, each on its own
//! connection.

use std::sync::Arc;
use std::time::Duration;

use inverter_monitor::config::{Config, HttpConfig, InverterConfig};
use inverter_monitor::sim::{self, Fleet, SimClock, SimConfig, Simulator};
use inverter_monitor::transport::{Link, Target, Wire};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// A fleet of `size` loggers from serial [`SERIAL`] on a free port.
pub(crate) async fn spawn_fleet(size: u32) -> (std::net::SocketAddr, Arc<Fleet>, CancellationToken) {
    init_log();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = SimConfig { clock: SimClock::Fixed(noon()), ..SimConfig::new(SERIAL) };
    let fleet = Arc::new(Fleet::new(Arc::new(Simulator::new(config, profile())), size));
    let stop = CancellationToken::new();
    tokio::spawn(sim::serve_fleet(listener, fleet.clone(), stop.clone()));
    (addr, fleet, stop)
}

fn link_to(addr: std::net::SocketAddr, serial: u32) -> Link {
    let target =
        Target { host: "127.0.0.1".into(), port: addr.port(), wire: Wire::Solarman { serial }, slave: 1 };
    Link::new(target, fast_settings())
}

#[tokio::test]
async fn two_fleet_loggers_answer_with_their_own_serials() {
    let (addr, fleet, stop) = spawn_fleet(1000).await;
    let (first, last) = (fleet.logger_serial(0).unwrap(), fleet.logger_serial(999).unwrap());
    assert_eq!((first, last), (SERIAL, SERIAL + 999));
    for (serial, want) in [(first, "SIM0000000"), (last, "SIM0000999")] {
        let mut link = link_to(addr, serial);
        let mut poller = poller(profile());
        let snapshot = poll(&mut poller, &mut link, fleet.simulator()).await;
        assert_eq!(snapshot.get("inverter_serial").unwrap().to_string(), want);
        assert_eq!(&*snapshot.identity, want, "each logger is its own Home Assistant device");
        assert!(snapshot.rejected.is_empty(), "the shared house decodes cleanly: {:?}", snapshot.rejected);
    }
    let mut outsider = link_to(addr, SERIAL + 1000);
    let now = noon();
    let polled = poller(profile()).poll_once(&mut outsider, now, now.naive_utc()).await;
    assert!(polled.is_err(), "a serial outside the fleet is not answered as a member");
    stop.cancel();
}

#[tokio::test]
async fn the_service_polls_fleet_loggers_on_one_port_each_on_its_own_connection() {
    let (addr, _fleet, stop) = spawn_fleet(2).await;
    let inverter = |name: &str, serial: u32| {
        let mut config = InverterConfig::new(name, "127.0.0.1", addr.port(), serial);
        (config.interval, config.request_pause) = (Duration::from_millis(50), Duration::from_millis(1));
        config
    };
    let mut config = Config::new(vec![inverter("a", SERIAL), inverter("b", SERIAL + 1)]);
    config.http = Some(HttpConfig::new("127.0.0.1:0".parse().unwrap()));
    assert_eq!(config.stacks(), [vec![0], vec![1]], "other serials behind one port: other loggers");
    let polled = service_until_polled(&config, 2, "both fleet loggers polled").await;
    let mut serials: Vec<&str> =
        polled.iter().filter_map(|i| reading(i, "inverter_serial")?.as_str()).collect();
    serials.sort_unstable();
    assert_eq!(serials, ["SIM0000000", "SIM0000001"]);
    stop.cancel();
}
