//! The state of one room, one user session and one stream. Plain data: the rules live in [`super::Registry`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use zego_protocol::cluster::NodeId;
use zego_protocol::limits;
use zego_protocol::message::{RoomExtraInfo, StreamInfo, User};

use super::{RelaySessionId, SessionId};
use crate::auth::Grant;
use crate::rate::RateLimit;

/// A room of an app: who is in it, which streams it has, its extra info.
#[derive(Debug)]
pub struct Room {
    /// Session ids grow with each login, so this set lists members in the order they joined.
    pub members: BTreeSet<SessionId>,
    /// Stream ids published (or being published) in this room.
    pub streams: BTreeSet<String>,
    pub extra_info: BTreeMap<String, RoomExtraInfo>,
    /// 0 = no limit; set by the login that created the room.
    pub max_member_count: u32,
    pub last_message_id: u64,
    pub next_online_count: Instant,
}

impl Room {
    pub fn new(max_member_count: u32, next_online_count: Instant) -> Self {
        Room {
            members: BTreeSet::new(),
            streams: BTreeSet::new(),
            extra_info: BTreeMap::new(),
            max_member_count,
            last_message_id: 0,
            next_online_count,
        }
    }

    /// The members other than `id`, in the order they joined.
    pub fn others(&self, id: SessionId) -> Vec<SessionId> {
        self.members.iter().copied().filter(|m| *m != id).collect()
    }
}

/// What this node knows of a room from the other nodes of its cluster: their users, the streams they publish
/// (which are also in the app's streams), and the extra info their users set.
#[derive(Debug, Default)]
pub struct RemoteRoom {
    /// By user id, with the node the user is on.
    pub users: BTreeMap<String, (User, NodeId)>,
    pub streams: BTreeSet<String>,
    pub extra_info: BTreeMap<String, RoomExtraInfo>,
}

impl RemoteRoom {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.streams.is_empty() && self.extra_info.is_empty()
    }
}

/// A play of one stream by one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Play {
    /// The stream does not exist yet; the offer is kept to start the play when it appears.
    Waiting {
        offer: String,
    },
    /// The relay is being asked; `attempt` tells a stale relay answer from the current one. `direct`: the
    /// client's Play request still waits for its reply (otherwise the play had waited for the stream).
    Starting {
        attempt: u64,
        direct: bool,
    },
    Active {
        relay: RelaySessionId,
    },
}

/// A logged-in user in a room, possibly without a connection for a while (it may resume).
#[derive(Debug)]
pub struct Session {
    pub app_id: u32,
    pub room_id: String,
    pub user: User,
    pub notify_users: bool,
    /// The secret a client gives back as `resume_session`.
    pub resume_token: String,
    pub last_seen: Instant,
    pub grant: Grant,
    /// When the token expires, on the monotonic clock.
    pub token_expire_at: Option<Instant>,
    pub token_warned: bool,
    pub publishing: BTreeSet<String>,
    pub plays: BTreeMap<String, Play>,
    pub broadcast_rate: RateLimit,
    pub command_rate: RateLimit,
    pub room_info_rate: RateLimit,
}

impl Session {
    pub fn new(
        app_id: u32,
        room_id: String,
        user: User,
        notify_users: bool,
        resume_token: String,
        now: Instant,
    ) -> Self {
        Session {
            app_id,
            room_id,
            user,
            notify_users,
            resume_token,
            last_seen: now,
            grant: Grant::AppSign,
            token_expire_at: None,
            token_warned: false,
            publishing: BTreeSet::new(),
            plays: BTreeMap::new(),
            broadcast_rate: RateLimit::per_second(limits::BROADCAST_PER_SECOND),
            command_rate: RateLimit::per_second(limits::CUSTOM_COMMAND_PER_SECOND),
            room_info_rate: RateLimit::per_second(limits::ROOM_EXTRA_INFO_PER_SECOND),
        }
    }
}

/// A stream of an app, owned by the session that publishes it.
#[derive(Debug)]
pub struct Stream {
    pub room_id: String,
    pub owner: SessionId,
    pub user: User,
    pub extra_info: String,
    /// The publisher's relay session; `None` until the first publish completes (the stream is not visible yet).
    pub relay: Option<RelaySessionId>,
    /// A publish in flight at the relay.
    pub attempt: Option<u64>,
    /// Sessions playing it (starting or active).
    pub players: BTreeSet<SessionId>,
    /// When the publisher's media connection ended at the relay; the stream is deleted if it is not published
    /// again within the grace period.
    pub media_lost_at: Option<Instant>,
    /// The node of the cluster that publishes it, for a stream published elsewhere (its `owner` is then
    /// [`NO_SESSION`] and its `relay` `None`: players here are served by a pull from that node).
    pub origin: Option<NodeId>,
}

/// The owner of a stream published on another node: no session of this one.
pub const NO_SESSION: SessionId = 0;

impl Stream {
    /// A stream published elsewhere in the cluster.
    pub fn remote(room_id: &str, info: &StreamInfo, node: &str) -> Self {
        Stream {
            room_id: room_id.to_owned(),
            owner: NO_SESSION,
            user: info.user.clone(),
            extra_info: info.extra_info.clone(),
            relay: None,
            attempt: None,
            players: BTreeSet::new(),
            media_lost_at: None,
            origin: Some(node.to_owned()),
        }
    }

    /// Visible to the room: its publish completed here, or it is published on another node.
    pub fn is_live(&self) -> bool {
        self.relay.is_some() || self.origin.is_some()
    }

    pub fn info(&self, stream_id: &str) -> StreamInfo {
        StreamInfo {
            user: self.user.clone(),
            stream_id: stream_id.to_owned(),
            extra_info: self.extra_info.clone(),
        }
    }
}
