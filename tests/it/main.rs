//! Integration tests: one binary, against the real RabbitMQ and PostgreSQL
//! on 127.0.0.1. Each test has its own database and broker namespace.

mod alerting;
mod bench;
mod bundled;
mod carriers;
mod cases;
mod cli;
mod cluster;
mod connecting;
mod console;
mod contract;
mod demo;
mod department;
mod desk;
mod dispatch;
mod dlq_ops;
mod helpers;
mod hostile;
mod isolation;
mod lifecycle;
mod migrate;
mod open311;
mod personal_data;
mod proxy;
mod reliability;
mod restore;
mod samples;
mod store;
mod tls;
