//! Connection startup: with authentication off, trust (as before); with `--require-auth`,
//! SCRAM-SHA-256 against the users' stored keys ([`hourglass_auth::scram`]), the user being the
//! startup `user` parameter, and on TLS connections also SCRAM-SHA-256-PLUS (channel binding
//! `tls-server-end-point`, [`ServerEndPoint`]).
//!
//! * `--require-tls` and a connection without TLS: FATAL `28000`, before any password exchange
//!   (with and without `--require-auth`).
//! * A wrong password or unknown user: FATAL `28P01` (the same for both, so user names cannot
//!   be probed); a malformed SCRAM exchange: FATAL `28000`.
//! * Anything but the expected SASL message (a cleartext or MD5 password, a Query, a
//!   SASLResponse first): FATAL `08P01` (protocol violation), as PostgreSQL answers.
//!
//! Every failure before login is FATAL and recorded in the audit log (interface `postgres`,
//! action `authenticate`, outcome `unauthenticated`). The [`Login`] is kept in the
//! connection's session extensions and re-checked at each statement ([`crate::session`]).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Sink, SinkExt};
use hourglass_auth::scram::{self, ChannelBinding, Fingerprint};
use hourglass_auth::{Principal, Security};
use parking_lot::Mutex;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::errors::{fatal, INVALID_AUTHORIZATION, INVALID_PASSWORD, PROTOCOL_VIOLATION};
use crate::frame;
use crate::session::Login;
use crate::Service;

static PIDS: std::sync::LazyLock<RandomPidSecretKeyGenerator> =
    std::sync::LazyLock::new(RandomPidSecretKeyGenerator::default);

/// The refusal of a connection without TLS under `--require-tls`.
pub const TLS_REQUIRED: &str = "TLS is required: connect with sslmode=require";

/// The `tls-server-end-point` channel binding data of a TLS connection (a session extension,
/// set when the handshake's certificate is known): SCRAM-SHA-256-PLUS is offered with it.
pub struct ServerEndPoint(pub Vec<u8>);

/// Where a connection's SASL exchange stands.
enum Stage {
    /// Before the startup message.
    Start,
    /// SASL offered; the client's SASLInitialResponse is next. With the channel binding data
    /// when SCRAM-SHA-256-PLUS was offered.
    Offered(Option<Vec<u8>>),
    /// The server-first message was sent; the client-final message is next. The principal and
    /// secret fingerprint are `None` for an unknown user (the exchange still runs to the end).
    Final(scram::Exchange, Option<(Arc<Principal>, Fingerprint)>),
    /// Logged in, or failed.
    Over,
}

/// One connection's startup (a fresh handler per connection holds the SCRAM state).
pub struct Startup {
    service: Arc<Service>,
    security: Security,
    stage: Mutex<Stage>,
}

/// Records a refused login attempt: the claimed user (`-` when none), the database asked for.
pub(crate) fn audit_refusal<C: ClientInfo>(security: &Security, client: &C, message: &str) {
    let metadata = client.metadata();
    let user = metadata
        .get("user")
        .map(String::as_str)
        .filter(|u| !u.is_empty())
        .unwrap_or("-");
    let database = metadata.get("database").map(String::as_str).unwrap_or("");
    security.audit(
        user,
        &client.socket_addr().to_string(),
        "postgres",
        "authenticate",
        database,
        "unauthenticated",
        message,
    );
}

fn protocol_violation(message: impl Into<String>) -> PgWireError {
    fatal(PROTOCOL_VIOLATION, message)
}

/// The name of a frontend message, for "expected ..., got ..." errors.
fn message_name(message: &PgWireFrontendMessage) -> &'static str {
    match message {
        PgWireFrontendMessage::Startup(_) => "a startup packet",
        PgWireFrontendMessage::Query(_) => "Query ('Q')",
        PgWireFrontendMessage::Parse(_) => "Parse ('P')",
        PgWireFrontendMessage::Bind(_) => "Bind ('B')",
        PgWireFrontendMessage::Describe(_) => "Describe ('D')",
        PgWireFrontendMessage::Execute(_) => "Execute ('E')",
        PgWireFrontendMessage::Close(_) => "Close ('C')",
        PgWireFrontendMessage::Sync(_) => "Sync ('S')",
        PgWireFrontendMessage::Flush(_) => "Flush ('H')",
        PgWireFrontendMessage::CopyData(_) => "CopyData ('d')",
        PgWireFrontendMessage::CopyDone(_) => "CopyDone ('c')",
        PgWireFrontendMessage::CopyFail(_) => "CopyFail ('f')",
        _ => "another message",
    }
}

impl Startup {
    pub(crate) fn new(service: Arc<Service>, security: Security) -> Startup {
        Startup {
            service,
            security,
            stage: Mutex::new(Stage::Start),
        }
    }

    /// Makes a failure FATAL and records it (I/O errors: the client is gone, nothing to say).
    fn refused<C: ClientInfo>(&self, client: &C, error: PgWireError) -> PgWireError {
        if matches!(error, PgWireError::IoError(_)) {
            return error;
        }
        *self.stage.lock() = Stage::Over;
        let mut info = ErrorInfo::from(error);
        info.severity = "FATAL".to_owned();
        audit_refusal(&self.security, client, &info.message);
        tracing::debug!(peer = %client.socket_addr(), code = %info.code, message = %info.message,
            "postgres login refused");
        PgWireError::UserError(Box::new(info))
    }

    async fn step<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if !matches!(*self.stage.lock(), Stage::Start) {
                    return Err(protocol_violation("unexpected second startup packet"));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.security.require_tls && !client.is_secure() {
                    return Err(fatal(INVALID_AUTHORIZATION, TLS_REQUIRED));
                }
                if self.security.store.is_none() {
                    client.session_extensions().insert(Login::trust());
                    *self.stage.lock() = Stage::Over;
                    return self.log_in(client).await;
                }
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                if user.is_empty() {
                    return Err(fatal(
                        INVALID_AUTHORIZATION,
                        "no PostgreSQL user name specified in startup packet",
                    ));
                }
                let end_point = client
                    .session_extensions()
                    .get::<ServerEndPoint>()
                    .map(|e| e.0.clone());
                let mut mechanisms = Vec::with_capacity(2);
                if end_point.is_some() {
                    mechanisms.push(scram::MECHANISM_PLUS.to_owned());
                }
                mechanisms.push(scram::MECHANISM.to_owned());
                *self.stage.lock() = Stage::Offered(end_point);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        mechanisms,
                    )))
                    .await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(PasswordMessageFamily::Raw(body)) => {
                let stage = std::mem::replace(&mut *self.stage.lock(), Stage::Over);
                match stage {
                    Stage::Offered(end_point) => self.client_first(client, &body, end_point).await,
                    Stage::Final(exchange, found) => {
                        self.client_final(client, &body, exchange, found).await
                    }
                    Stage::Start | Stage::Over => {
                        Err(protocol_violation("unexpected password message"))
                    }
                }
            }
            other => Err(protocol_violation(format!(
                "expected SASL response, got {}",
                message_name(&other)
            ))),
        }
    }

    /// The SASLInitialResponse: the mechanism and the client-first message.
    async fn client_first<C>(
        &self,
        client: &mut C,
        body: &[u8],
        end_point: Option<Vec<u8>>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some((mechanism, data)) = frame::sasl_initial_response(body) else {
            // A PasswordMessage (cleartext or MD5) where the SASL mechanism choice belongs.
            return Err(protocol_violation(
                "expected SASL response, got a password message: this server accepts only \
                 SCRAM-SHA-256 authentication",
            ));
        };
        let binding = match (mechanism.as_str(), end_point.as_deref()) {
            (scram::MECHANISM, None) => ChannelBinding::Unsupported,
            (scram::MECHANISM, Some(data)) => ChannelBinding::Offered(data),
            (scram::MECHANISM_PLUS, Some(data)) => ChannelBinding::Selected(data),
            _ => {
                return Err(protocol_violation(
                    "client selected an invalid SASL authentication mechanism",
                ))
            }
        };
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let found = self.security.store.as_ref().and_then(|s| s.scram(&user));
        let (server_first, exchange) = scram::server_first_bound(
            data.as_deref().unwrap_or_default(),
            &user,
            found.as_ref().map(|(_, s)| s),
            binding,
        )
        .map_err(|e| fatal(INVALID_AUTHORIZATION, e.message))?;
        *self.stage.lock() = Stage::Final(exchange, found.map(|(p, s)| (p, s.fingerprint())));
        client
            .send(PgWireBackendMessage::Authentication(
                Authentication::SASLContinue(Bytes::from(server_first)),
            ))
            .await?;
        Ok(())
    }

    /// The SASLResponse with the client-final message: the proof.
    async fn client_final<C>(
        &self,
        client: &mut C,
        body: &[u8],
        exchange: scram::Exchange,
        found: Option<(Arc<Principal>, Fingerprint)>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = client.metadata().get("user").cloned().unwrap_or_default();
        let verified = scram::verify_final(&exchange, body)
            .map_err(|e| fatal(INVALID_AUTHORIZATION, e.message))?;
        let (Some(server_final), Some((principal, fingerprint)), Some(store)) =
            (verified, found, self.security.store.clone())
        else {
            return Err(fatal(
                INVALID_PASSWORD,
                format!("password authentication failed for user \"{user}\""),
            ));
        };
        client
            .send(PgWireBackendMessage::Authentication(
                Authentication::SASLFinal(Bytes::from(server_final)),
            ))
            .await?;
        let database = client
            .metadata()
            .get("database")
            .cloned()
            .unwrap_or_default();
        client.session_extensions().insert(Login::authenticated(
            principal,
            fingerprint,
            store,
            self.security.clone(),
            client.socket_addr().to_string(),
            database,
        ));
        self.log_in(client).await
    }

    /// Opens the session and tells the client it is in.
    async fn log_in<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (pid, secret) = PIDS.generate(&*client);
        client.set_pid_and_secret_key(pid, secret);
        self.service.connect(client)?;
        finish_authentication(client, &DefaultServerParameterProvider::default()).await
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let result = self.step(client, message).await;
        result.map_err(|e| self.refused(client, e))
    }
}
