//! The PostgreSQL outbox, with the `postgres` feature. Every test here needs the database
//! (`DATABASE_URL`); `-- --skip outbox` skips them, as every path here has `outbox` in it.

mod batch;
mod leases;
mod readme;
mod worker;
