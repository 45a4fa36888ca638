//! The one integration-test binary: real `anonshare-server` processes on 127.0.0.1:0, driven by
//! the real `anonshare` client, curl, and python3's ftplib.

#[cfg(feature = "tls")]
mod capture;
mod cli;
mod cluster;
mod crash;
mod fault_proxy;
#[cfg(feature = "tls")]
mod ftps;
mod hardening;
mod lifecycle;
mod operations;
mod pipelining;
mod protocol;
mod proxy;
mod stock;
mod stock_clients;
mod stock_uploads;
mod support;
mod tidy;
mod ux;
