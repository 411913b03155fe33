//! Web console sessions (see `SessionStore`). The rows are keyed by the SHA-256 of the random
//! session id the browser holds; the expiry rules (absolute and idle) are the caller's, these
//! queries only store, find, touch and delete.

use bulwark_core::AnalystId;
use chrono::{DateTime, Utc};

/// A session to store at login.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the session id (the id itself is never stored).
    pub id_hash: Vec<u8>,
    pub analyst_id: AnalystId,
    /// The analyst's token version at login; a different one later ends the session.
    pub token_version: i64,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    /// Absolute expiry: the session ends then, however active.
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub client_ip: Option<String>,
}

/// A stored session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    #[sqlx(try_from = "uuid::Uuid")]
    pub analyst_id: AnalystId,
    pub token_version: i64,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

macro_rules! impl_sessions {
    ($store:ident) => {
        mod sessions_impl {
            use super::$store;
            use $crate::sessions::{NewSession, SessionRecord};
            use $crate::{SessionStore, StoreResult};
            use chrono::{DateTime, Utc};

            #[async_trait::async_trait]
            impl SessionStore for $store {
                async fn create_session(&self, new: &NewSession) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO web_sessions (id_hash, analyst_id, token_version, csrf_token, \
                         created_at, last_seen_at, expires_at, user_agent, client_ip) \
                         VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
                    )
                    .bind(&new.id_hash)
                    .bind(new.analyst_id.0)
                    .bind(new.token_version)
                    .bind(&new.csrf_token)
                    .bind(new.created_at)
                    .bind(new.expires_at)
                    .bind(&new.user_agent)
                    .bind(&new.client_ip)
                    .execute(&self.writer)
                    .await
                    .map_err(|e| $crate::conflict_or(e, "session"))?;
                    Ok(())
                }

                async fn session_by_hash(&self, id_hash: &[u8]) -> StoreResult<Option<SessionRecord>> {
                    Ok(sqlx::query_as(
                        "SELECT id_hash, analyst_id, token_version, csrf_token, created_at, \
                         last_seen_at, expires_at FROM web_sessions WHERE id_hash = $1",
                    )
                    .bind(id_hash)
                    .fetch_optional(&self.reader)
                    .await?)
                }

                async fn touch_session(&self, id_hash: &[u8], at: DateTime<Utc>) -> StoreResult<()> {
                    sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1")
                        .bind(at)
                        .bind(id_hash)
                        .execute(&self.writer)
                        .await?;
                    Ok(())
                }

                async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
                    sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
                        .bind(id_hash)
                        .execute(&self.writer)
                        .await?;
                    Ok(())
                }

                async fn purge_sessions(
                    &self,
                    now: DateTime<Utc>,
                    idle_before: DateTime<Utc>,
                ) -> StoreResult<u64> {
                    let r = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at < $2")
                        .bind(now)
                        .bind(idle_before)
                        .execute(&self.writer)
                        .await?;
                    Ok(r.rows_affected())
                }
            }
        }
    };
}

pub(crate) use impl_sessions;
