//! API tokens: per-account bearer credentials for JMAP (`Authorization:
//! Bearer …`), made and revoked with `petrel account token` or the JSON
//! API, shown once when made. A token is `ptk_{account}_{id}_{secret}`
//! with 256 random bits of secret; the directory keeps only the SHA-256
//! of the secret (a slow password hash adds nothing to a secret that
//! cannot be guessed) and compares it in constant time. A disabled or
//! deleted account's tokens stop working with it.

use serde::{Deserialize, Serialize};
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::{json, key, parse, Account, DirError, Directory, Result};

const TOKEN: u8 = b't';

fn k_token(acct: u32, id: u64) -> Vec<u8> {
    let mut rest = acct.to_be_bytes().to_vec();
    rest.extend_from_slice(&id.to_be_bytes());
    key(TOKEN, &rest)
}

/// A token as the directory keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: u64,
    pub name: String,
    pub created: i64,
    /// SHA-256 of the secret, hex.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub hash: String,
}

fn digest(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Directory {
    /// Makes a token for the account; returns it with the full token
    /// string, which is not kept and cannot be shown again.
    pub async fn create_token(&self, address: &str, name: &str) -> Result<(Token, String)> {
        use base64::Engine;
        let a = self
            .get_account(address)
            .await?
            .ok_or_else(|| DirError::NotFound(format!("no account {address}")))?;
        let secret =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let id = rand::random::<u64>() >> 1;
        let t = Token {
            id,
            name: name.to_string(),
            created: crate::core::unix_now(),
            hash: digest(&secret),
        };
        let v = json(&t);
        self.store
            .transact(move |txn| {
                txn.put(k_token(a.id, id), v.clone());
                Ok(())
            })
            .await?;
        tracing::info!(account = %a.address, token = id, "API token created");
        let full = format!("ptk_{}_{id}_{secret}", a.id);
        Ok((
            Token {
                hash: String::new(),
                ..t
            },
            full,
        ))
    }

    /// The account's tokens, without their hashes.
    pub async fn list_tokens(&self, address: &str) -> Result<Vec<Token>> {
        let a = self
            .get_account(address)
            .await?
            .ok_or_else(|| DirError::NotFound(format!("no account {address}")))?;
        let mut out = Vec::new();
        for (_, v) in self
            .store
            .scan_prefix(key(TOKEN, &a.id.to_be_bytes()))
            .await?
        {
            let t: Token = parse(&v)?;
            out.push(Token {
                hash: String::new(),
                ..t
            });
        }
        Ok(out)
    }

    pub async fn revoke_token(&self, address: &str, id: u64) -> Result<()> {
        let a = self
            .get_account(address)
            .await?
            .ok_or_else(|| DirError::NotFound(format!("no account {address}")))?;
        let found = self
            .store
            .transact(move |txn| {
                let k = k_token(a.id, id);
                let there = txn.get(&k)?.is_some();
                txn.delete(k);
                Ok(there)
            })
            .await?;
        if !found {
            return Err(DirError::NotFound(format!("no token {id} for {address}")));
        }
        tracing::info!(account = %address, token = id, "API token revoked");
        Ok(())
    }

    /// The enabled account a bearer token belongs to, if it is valid.
    pub async fn token_account(&self, token: &str) -> Result<Option<Account>> {
        let mut parts = token
            .strip_prefix("ptk_")
            .unwrap_or_default()
            .splitn(3, '_');
        let (Some(acct), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let (Ok(acct), Ok(id)) = (acct.parse::<u32>(), id.parse::<u64>()) else {
            return Ok(None);
        };
        let Some(v) = self.store.get(k_token(acct, id)).await? else {
            return Ok(None);
        };
        let t: Token = parse(&v)?;
        let ok: bool = digest(secret).as_bytes().ct_eq(t.hash.as_bytes()).into();
        if !ok {
            return Ok(None);
        }
        Ok(self.account_by_id(acct).await?.filter(|a| a.enabled))
    }

    /// Whether token `id` of account `acct` still exists.
    pub async fn token_exists(&self, acct: u32, id: u64) -> Result<bool> {
        Ok(self.store.get(k_token(acct, id)).await?.is_some())
    }

    /// Inside an account's deletion: its tokens go.
    pub(super) fn delete_tokens_in(
        txn: &mut crate::store::Txn<'_>,
        acct: u32,
    ) -> std::result::Result<(), crate::store::StoreError> {
        for (k, _) in txn.scan_prefix(&key(TOKEN, &acct.to_be_bytes()))? {
            txn.delete(k);
        }
        Ok(())
    }
}
