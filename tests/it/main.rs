//! Integration tests: the client against the simulator over real TCP, the service loop, and
//! the command line. One binary (docs/style.md §13); `TEST_LOG=1` shows the logs.

mod addon;
mod addon_mode;
mod auto;
mod broker;
mod cli;
mod closed_pipe;
mod discover;
mod families;
mod fault_days;
mod faults;
mod fleet;
mod helpers;
mod http_security;
mod influx;
mod layers;
mod logger_serial;
mod mqtt;
mod observability;
mod packs;
mod poll_loop;
mod process;
mod record;
mod replay;
mod replay_svg;
mod rtu;
mod secrets;
mod service;
mod shard;
mod sim_reacts;
mod stack;
mod totals;
mod weather;
mod web;
mod writes;
