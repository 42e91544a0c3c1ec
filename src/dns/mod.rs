//! The DNS records a hosted domain needs: what to publish (`advice`) and
//! whether the world sees it so (`check`, `petrel dns check DOMAIN`).

pub mod advice;
pub mod check;
