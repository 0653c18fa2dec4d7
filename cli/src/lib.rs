//! rmake-remote: the GNU make compatible client.
