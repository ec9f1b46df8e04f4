//! Logging in (app_sign proof or token), resuming a session on a new connection, and logging out.

use super::*;

impl Registry {
    /// A login: checks the request and its credentials, resumes or creates the session, and announces it.
    /// On `Err` nothing changed and the caller replies with the code.
    pub fn login(&mut self, req: LoginRequest, now: Now) -> Result<LoginOk, ErrorCode> {
        if req.protocol_version != PROTOCOL_VERSION {
            return Err(error::PROTOCOL_VERSION_UNSUPPORTED);
        }
        validate::room_id(&req.room_id)?;
        validate::user_id(&req.user.user_id)?;
        validate::user_name(&req.user.user_name)?;
        let app = self
            .apps
            .get(&req.app_id)
            .ok_or(error::ENGINE_APP_ID_INCORRECT)?;
        let grant = auth::check_login(
            &app.keys,
            &req.credentials,
            &req.user.user_id,
            &req.room_id,
            now,
            &app.replay,
        )?;

        if let Some(resumed) = self.resume(&req, &grant, now) {
            self.spend_proof(&req, now);
            return Ok(resumed);
        }

        // Capacity, counting the slot a same-user session in this room is about to free.
        let app = self
            .apps
            .get(&req.app_id)
            .ok_or(error::ENGINE_APP_ID_INCORRECT)?;
        let previous = app.users.get(&req.user.user_id).copied();
        if let Some(room) = app.rooms.get(&req.room_id) {
            let mut members = room.members.len() + app.remote_member_count(&req.room_id);
            if previous.is_some_and(|p| room.members.contains(&p)) {
                members -= 1;
            }
            if room.max_member_count > 0 && members >= room.max_member_count as usize {
                return Err(error::ROOM_MAX_MEMBER_COUNT);
            }
        }

        self.spend_proof(&req, now);
        let mut outputs = Vec::new();
        if let Some(previous) = previous {
            self.totals.same_user_kicks += 1;
            self.remove_session(previous, Removal::SameUserLoggedIn, &mut outputs);
        }
        // The same user on another node is kicked there when it hears of this login.
        self.forget_remote_user(req.app_id, &req.user.user_id, &mut outputs);

        self.last_session += 1;
        let id = self.last_session;
        let resume_token = format!("{:032x}", rand::random::<u128>());
        let mut session = Session::new(
            req.app_id,
            req.room_id.clone(),
            req.user.clone(),
            req.notify_users,
            resume_token.clone(),
            now.mono,
        );
        apply_grant(&mut session, grant, now);

        let app = self
            .apps
            .get_mut(&req.app_id)
            .ok_or(error::ENGINE_APP_ID_INCORRECT)?;
        let online_interval = self.settings.online_count_interval;
        let room = app
            .rooms
            .entry(req.room_id.clone())
            .or_insert_with(|| Room::new(req.max_member_count, now.mono + online_interval));
        let others: Vec<SessionId> = room
            .members
            .iter()
            .copied()
            .filter(|m| self.sessions.get(m).is_some_and(|s| s.notify_users))
            .collect();
        room.members.insert(id);
        app.users.insert(req.user.user_id.clone(), id);
        self.sessions.insert(id, session);
        self.by_resume_token.insert(resume_token, id);

        let answer = send(id, self.login_reply(id, req.req_id, now));
        let clustered = self.clustered;
        outputs.extend(reply_then_tell(answer, |outputs| {
            if clustered {
                outputs.push(Output::Cluster(RoomEvent::UserJoined {
                    app_id: req.app_id,
                    room_id: req.room_id.clone(),
                    user: req.user.clone(),
                }));
            }
            let msg = ServerMessage::UserUpdate {
                room_id: req.room_id.clone(),
                update_type: UpdateType::Add,
                users: vec![req.user.clone()],
            };
            tell(outputs, others, msg)
        }));
        tracing::info!(
            session = id,
            app_id = req.app_id,
            room_id = %req.room_id,
            user_id = %req.user.user_id,
            "logged in"
        );
        Ok(LoginOk {
            session: id,
            resumed: false,
            outputs,
        })
    }

    /// A login is going through: its app_sign proof cannot be used again (a refused login spends nothing).
    fn spend_proof(&mut self, req: &LoginRequest, now: Now) {
        if let Some(app) = self.apps.get_mut(&req.app_id) {
            app.replay.spend(&req.credentials, &req.user.user_id, now);
        }
    }

    /// Moves the session a login names in `resume_session` onto the new connection (the caller closes the old
    /// one) if it is of the same app, room and user: nobody else hears of it. `None`: there is no such session.
    fn resume(&mut self, req: &LoginRequest, grant: &Grant, now: Now) -> Option<LoginOk> {
        let id = *self.by_resume_token.get(req.resume_session.as_deref()?)?;
        let session = self.sessions.get_mut(&id).filter(|s| {
            s.app_id == req.app_id && s.room_id == req.room_id && s.user.user_id == req.user.user_id
        })?;
        session.last_seen = now.mono;
        session.notify_users = req.notify_users;
        session.user.user_name = req.user.user_name.clone();
        if let Grant::Token(_) = grant {
            apply_grant(session, grant.clone(), now);
        }
        tracing::info!(session = id, user_id = %req.user.user_id, "session resumed");
        Some(LoginOk {
            session: id,
            resumed: true,
            outputs: vec![send(id, self.login_reply(id, req.req_id, now))],
        })
    }

    /// The reply to a login, or an internal error if the session is not wholly there to describe.
    fn login_reply(&self, id: SessionId, req_id: u64, now: Now) -> ServerMessage {
        match self.snapshot(id, now) {
            Some(result) => ServerMessage::reply(req_id, error::SUCCESS, Some(result)),
            None => {
                tracing::error!(session = id, "logged-in session without its app or room");
                ServerMessage::reply(req_id, error::ROOM_INNER_ERROR, None)
            }
        }
    }

    /// The snapshot a login reply carries: it is the first "Add" of everyone and everything present. `None` if
    /// the session, its app or its room is missing.
    fn snapshot(&self, id: SessionId, now: Now) -> Option<ReplyResult> {
        let session = self.sessions.get(&id)?;
        let app = self.apps.get(&session.app_id)?;
        let room = app.rooms.get(&session.room_id)?;
        let remote = app.remote_rooms.get(&session.room_id);
        let users = if session.notify_users {
            let remote_users = remote
                .into_iter()
                .flat_map(|r| r.users.values().map(|(user, _)| user.clone()));
            room.members
                .iter()
                .filter_map(|m| self.sessions.get(m))
                .map(|s| s.user.clone())
                .chain(remote_users)
                .collect()
        } else {
            Vec::new()
        };
        let streams = room
            .streams
            .iter()
            .chain(remote.into_iter().flat_map(|r| r.streams.iter()))
            .filter_map(|sid| {
                app.streams
                    .get(sid)
                    .filter(|s| s.is_live())
                    .map(|s| s.info(sid))
            })
            .collect();
        // Extra info set on several nodes: the latest update of each key.
        let mut extra_info = room.extra_info.clone();
        for info in remote.into_iter().flat_map(|r| r.extra_info.values()) {
            let newer = extra_info
                .get(&info.key)
                .is_none_or(|known| known.update_time_ms < info.update_time_ms);
            if newer {
                extra_info.insert(info.key.clone(), info.clone());
            }
        }
        Some(ReplyResult::Login {
            session_id: session.resume_token.clone(),
            heartbeat_interval_ms: self.settings.heartbeat_interval.as_millis() as u64,
            heartbeat_timeout_ms: self.settings.heartbeat_timeout.as_millis() as u64,
            server_time_ms: now.unix_ms,
            token_expire_time: session.grant.token_expire(),
            users,
            streams,
            room_extra_info: extra_info.into_values().collect(),
            online_count: (room.members.len() + app.remote_member_count(&session.room_id)) as u32,
        })
    }

    pub fn logout(&mut self, id: SessionId, req_id: u64, _now: Now) -> Vec<Output> {
        if !self.sessions.contains_key(&id) {
            return Vec::new();
        }
        reply_then_tell(reply(id, req_id, error::SUCCESS, None), |outputs| {
            self.remove_session(id, Removal::Logout, outputs)
        })
    }
}
