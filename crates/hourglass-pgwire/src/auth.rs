//! Connection startup: with authentication off, trust (as before); with `--require-auth`,
//! SCRAM-SHA-256 against the users' stored keys ([`hourglass_auth::scram`]), the user being the
//! startup `user` parameter. A wrong password or unknown user ends the connection with FATAL
//! `28P01`; a malformed exchange with FATAL `28000`. Both are recorded in the audit log. The
//! authenticated [`Principal`] is kept in the connection's session extensions, and its session
//! sees only the databases it may read.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Sink, SinkExt};
use hourglass_auth::{scram, Principal, Security};
use parking_lot::Mutex;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::errors::{INVALID_AUTHORIZATION, INVALID_PASSWORD};
use crate::Service;

static PIDS: std::sync::LazyLock<RandomPidSecretKeyGenerator> =
    std::sync::LazyLock::new(RandomPidSecretKeyGenerator::default);

/// The principal a connection authenticated as (a session extension).
pub struct Authenticated(pub Arc<Principal>);

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// One connection's startup (a fresh handler per connection holds the SCRAM state).
pub struct Startup {
    pub(crate) service: Arc<Service>,
    pub(crate) security: Security,
    pub(crate) exchange: Mutex<Option<(scram::Exchange, Option<Arc<Principal>>)>>,
}

impl Startup {
    fn refuse<C: ClientInfo>(
        &self,
        client: &C,
        user: &str,
        code: &str,
        message: String,
    ) -> PgWireError {
        let peer = client.socket_addr().to_string();
        self.security.audit(
            user,
            &peer,
            "postgres",
            "authenticate",
            client
                .metadata()
                .get("database")
                .map(String::as_str)
                .unwrap_or(""),
            "unauthenticated",
            &message,
        );
        fatal(code, message)
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
        let Some(store) = self.security.store.clone() else {
            return self.service.on_startup(client, message).await;
        };
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        vec![scram::MECHANISM.to_owned()],
                    )))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let pending = self.exchange.lock().take();
                match pending {
                    None => {
                        let initial = msg.into_sasl_initial_response()?;
                        if initial.auth_method != scram::MECHANISM {
                            return Err(self.refuse(
                                client,
                                &user,
                                INVALID_AUTHORIZATION,
                                format!("SASL mechanism {} is not supported", initial.auth_method),
                            ));
                        }
                        let data = initial.data.unwrap_or_default();
                        let found = store.scram(&user);
                        let (server_first, exchange) =
                            scram::server_first(&data, &user, found.as_ref().map(|(_, s)| s))
                                .map_err(|e| {
                                    self.refuse(client, &user, INVALID_AUTHORIZATION, e.message)
                                })?;
                        *self.exchange.lock() = Some((exchange, found.map(|(p, _)| p)));
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(Bytes::from(server_first)),
                            ))
                            .await?;
                    }
                    Some((exchange, principal)) => {
                        let response = msg.into_sasl_response()?;
                        let verified =
                            scram::verify_final(&exchange, &response.data).map_err(|e| {
                                self.refuse(client, &user, INVALID_AUTHORIZATION, e.message)
                            })?;
                        let (Some(server_final), Some(principal)) = (verified, principal) else {
                            return Err(self.refuse(
                                client,
                                &user,
                                INVALID_PASSWORD,
                                format!("password authentication failed for user \"{user}\""),
                            ));
                        };
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLFinal(Bytes::from(server_final)),
                            ))
                            .await?;
                        let (pid, secret) = PIDS.generate(&*client);
                        client.set_pid_and_secret_key(pid, secret);
                        client.session_extensions().insert(Authenticated(principal));
                        self.service.connect(client);
                        finish_authentication(client, &DefaultServerParameterProvider::default())
                            .await?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}
