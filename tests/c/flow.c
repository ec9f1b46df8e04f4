/*
 * The whole SDK flow from C, against a running server: usage `flow WS_URL APP_ID APP_SIGN`.
 *
 * An anchor engine logs in, previews and publishes the synthetic camera; an audience engine logs in to the same
 * room, starts playing the stream from inside its room_stream_update callback, renders frames (I420, then RGBA32)
 * whose frame numbers increase, receives a broadcast message, stops, logs out and destroys itself from inside a
 * callback. Exits 0 only if every step happened within its deadline; otherwise prints the failed step and exits 1.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zego_express.h"

#define ROOM "c-abi-room"
#define STREAM "c-abi-stream"
#define MESSAGE "hello from C"
#define STEP_TIMEOUT_MS 20000

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "flow.c:%d: check failed: %s\n", __LINE__, #cond);                                        \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

/* A call that must return 0. */
#define OK(call)                                                                                                       \
    do {                                                                                                               \
        int code_ = (call);                                                                                            \
        if (code_ != 0) {                                                                                              \
            fprintf(stderr, "flow.c:%d: %s returned %d: %s\n", __LINE__, #call, code_, zego_get_error_message(code_)); \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls `cond` every 5 ms until it holds or the step times out. */
#define WAIT_FOR(what, cond)                                                                                           \
    do {                                                                                                               \
        uint64_t deadline_ = now_us() + (uint64_t)STEP_TIMEOUT_MS * 1000u;                                             \
        while (!(cond)) {                                                                                              \
            if (now_us() > deadline_) {                                                                                \
                fprintf(stderr, "flow.c:%d: timed out waiting for %s (%s)\n", __LINE__, what, #cond);                  \
                exit(1);                                                                                               \
            }                                                                                                          \
            sleep_ms(5);                                                                                               \
        }                                                                                                              \
        printf("ok: %s\n", what);                                                                                      \
        fflush(stdout);                                                                                                \
    } while (0)

/* What one engine observed; written on its callback thread, read by main. */
struct observed {
    zego_engine engine;
    const char *name;
    atomic_int room_state;
    atomic_int publisher_state;
    atomic_int player_state;
    atomic_int captured_frames;
    atomic_int captured_first_frame;
    atomic_int stream_added;
    atomic_int play_started_in_callback;
    atomic_int recv_video_first_frame;
    atomic_int i420_frames;
    atomic_int rgba_frames;
    atomic_int bad_frames;
    atomic_ullong last_frame_number;
    atomic_ullong latency_sum_us;
    atomic_int latency_samples;
    atomic_ullong latency_max_us;
    atomic_int broadcasts_received;
    atomic_int broadcast_result_seq;
    atomic_int broadcast_result_code;
    atomic_int users_seen;
    atomic_int audio_chunks;
    atomic_int render_first_frame;
    atomic_int video_width;
    atomic_int player_quality_reports;
    atomic_int publisher_quality_reports;
    atomic_int destroy_in_callback;
    atomic_int destroyed_in_callback;
};

static struct observed anchor = {.name = "anchor", .broadcast_result_seq = -1, .broadcast_result_code = -1};
static struct observed audience = {.name = "audience", .broadcast_result_seq = -1, .broadcast_result_code = -1};
static atomic_int log_lines;
static atomic_int log_reentered;

static void on_log(int32_t level, const char *message, void *user_context) {
    (void)level;
    (void)user_context;
    CHECK(message != NULL);
    if (atomic_fetch_add(&log_lines, 1) == 0) {
        /* Calling the API from the log callback must not deadlock: a failing call logs, and changing the level
         * reloads the filter that is dispatching this very line. */
        CHECK(zego_start_preview(0, 0) == ZEGO_ERROR_COMMON_ENGINE_NOT_CREATED);
        CHECK(zego_set_log_level(ZEGO_LOG_LEVEL_INFO) == 0);
        atomic_store(&log_reentered, 1);
    }
}

static void on_room_state_update(const char *room_id, int32_t state, int error_code, const char *extended_data,
                                 void *user_context) {
    struct observed *o = user_context;
    CHECK(room_id != NULL && extended_data != NULL);
    printf("%s: room %s state %d (error %d)\n", o->name, room_id, state, error_code);
    fflush(stdout);
    atomic_store(&o->room_state, state);
    if (state == ZEGO_ROOM_STATE_DISCONNECTED && atomic_load(&o->destroy_in_callback)) {
        /* Destroying the engine from inside its own callback. */
        CHECK(zego_engine_destroy(o->engine) == 0);
        CHECK(zego_start_preview(o->engine, ZEGO_PUBLISH_CHANNEL_MAIN) == ZEGO_ERROR_COMMON_ENGINE_NOT_CREATED);
        atomic_store(&o->destroyed_in_callback, 1);
    }
}

static void on_room_user_update(const char *room_id, int32_t update_type, const struct zego_user *users,
                                uint32_t count, void *user_context) {
    struct observed *o = user_context;
    CHECK(room_id != NULL && (count == 0 || users != NULL));
    for (uint32_t i = 0; i < count; i++) {
        CHECK(users[i].user_id != NULL && users[i].user_name != NULL);
    }
    if (update_type == ZEGO_UPDATE_TYPE_ADD) {
        atomic_fetch_add(&o->users_seen, (int)count);
    }
}

static void on_room_stream_update(const char *room_id, int32_t update_type, const struct zego_stream *streams,
                                  uint32_t count, const char *extended_data, void *user_context) {
    struct observed *o = user_context;
    CHECK(room_id != NULL && extended_data != NULL);
    for (uint32_t i = 0; i < count; i++) {
        CHECK(streams[i].stream_id != NULL && streams[i].user.user_id != NULL && streams[i].extra_info != NULL);
        if (update_type == ZEGO_UPDATE_TYPE_ADD && strcmp(streams[i].stream_id, STREAM) == 0) {
            CHECK(strcmp(streams[i].user.user_id, "c-anchor") == 0);
            atomic_store(&o->stream_added, 1);
            /* Calling the API from inside a callback. */
            struct zego_player_config config = {.resource_mode = ZEGO_STREAM_RESOURCE_MODE_ONLY_RTC};
            if (zego_start_playing_stream(o->engine, streams[i].stream_id, &config) == 0) {
                atomic_store(&o->play_started_in_callback, 1);
            }
        }
    }
}

static void on_publisher_state_update(const char *stream_id, int32_t state, int error_code,
                                      const char *extended_data, void *user_context) {
    struct observed *o = user_context;
    (void)extended_data;
    printf("%s: publisher %s state %d (error %d)\n", o->name, stream_id, state, error_code);
    fflush(stdout);
    atomic_store(&o->publisher_state, state);
}

static void on_player_state_update(const char *stream_id, int32_t state, int error_code, const char *extended_data,
                                   void *user_context) {
    struct observed *o = user_context;
    (void)extended_data;
    printf("%s: player %s state %d (error %d)\n", o->name, stream_id, state, error_code);
    fflush(stdout);
    atomic_store(&o->player_state, state);
}

static void on_captured_first_frame(int32_t channel, void *user_context) {
    struct observed *o = user_context;
    CHECK(channel == ZEGO_PUBLISH_CHANNEL_MAIN);
    atomic_store(&o->captured_first_frame, 1);
}

static void on_captured_frame(const uint8_t *const *data, const uint32_t *data_length,
                              const struct zego_video_frame_param *param, int32_t channel, void *user_context) {
    struct observed *o = user_context;
    CHECK(channel == ZEGO_PUBLISH_CHANNEL_MAIN);
    CHECK(param->format == ZEGO_VIDEO_FRAME_FORMAT_I420 && data[0] != NULL && data[1] != NULL && data[2] != NULL);
    CHECK(data_length[0] >= param->strides[0] * param->height);
    atomic_fetch_add(&o->captured_frames, 1);
}

static void on_remote_frame(const char *stream_id, const uint8_t *const *data, const uint32_t *data_length,
                            const struct zego_video_frame_param *param, void *user_context) {
    struct observed *o = user_context;
    int good = stream_id != NULL && strcmp(stream_id, STREAM) == 0 && param->width > 0 && param->height > 0;
    if (param->format == ZEGO_VIDEO_FRAME_FORMAT_I420) {
        uint32_t chroma_rows = (param->height + 1) / 2;
        good = good && data[0] && data[1] && data[2] && data[3] == NULL && param->strides[0] >= param->width &&
               data_length[0] >= param->strides[0] * param->height &&
               data_length[1] >= param->strides[1] * chroma_rows && data_length[2] >= param->strides[2] * chroma_rows;
        if (good) {
            atomic_fetch_add(&o->i420_frames, 1);
        }
    } else if (param->format == ZEGO_VIDEO_FRAME_FORMAT_RGBA32) {
        good = good && data[0] && data[1] == NULL && param->strides[0] == param->width * 4 &&
               data_length[0] == param->strides[0] * param->height && data[0][3] == 255;
        if (good) {
            atomic_fetch_add(&o->rgba_frames, 1);
        }
    } else {
        good = 0;
    }
    /* Frames may be dropped when rendering falls behind, never reordered or repeated. */
    unsigned long long last = atomic_exchange(&o->last_frame_number, param->frame_number);
    if (param->frame_number <= last && last != 0) {
        good = 0;
    }
    if (param->capture_time_us != 0) {
        uint64_t now = now_us();
        uint64_t latency = now > param->capture_time_us ? now - param->capture_time_us : 0;
        atomic_fetch_add(&o->latency_sum_us, latency);
        atomic_fetch_add(&o->latency_samples, 1);
        if (latency > atomic_load(&o->latency_max_us)) {
            atomic_store(&o->latency_max_us, latency);
        }
    }
    if (!good) {
        fprintf(stderr, "bad frame: format %d %ux%u number %llu after %llu\n", param->format, param->width,
                param->height, (unsigned long long)param->frame_number, last);
        atomic_fetch_add(&o->bad_frames, 1);
    }
}

static void on_recv_video_first_frame(const char *stream_id, void *user_context) {
    struct observed *o = user_context;
    CHECK(strcmp(stream_id, STREAM) == 0);
    atomic_store(&o->recv_video_first_frame, 1);
}

static void on_broadcast(const char *room_id, const struct zego_broadcast_message_info *messages, uint32_t count,
                         void *user_context) {
    struct observed *o = user_context;
    CHECK(strcmp(room_id, ROOM) == 0);
    for (uint32_t i = 0; i < count; i++) {
        CHECK(strcmp(messages[i].from_user.user_id, "c-anchor") == 0);
        if (strcmp(messages[i].message, MESSAGE) == 0) {
            atomic_fetch_add(&o->broadcasts_received, 1);
        }
    }
}

static void on_broadcast_result(const char *room_id, uint64_t message_id, int error_code, int seq,
                                void *user_context) {
    struct observed *o = user_context;
    (void)message_id;
    CHECK(strcmp(room_id, ROOM) == 0);
    atomic_store(&o->broadcast_result_code, error_code);
    atomic_store(&o->broadcast_result_seq, seq);
}

static void on_audio(const char *stream_id, const int16_t *samples, uint32_t sample_count,
                     const struct zego_audio_frame_param *param, void *user_context) {
    struct observed *o = user_context;
    CHECK(strcmp(stream_id, STREAM) == 0 && samples != NULL && sample_count > 0);
    CHECK(param->sample_rate == 48000 && (param->channels == 1 || param->channels == 2));
    CHECK(sample_count % param->channels == 0);
    atomic_fetch_add(&o->audio_chunks, 1);
}

static void on_render_first_frame(const char *stream_id, void *user_context) {
    struct observed *o = user_context;
    CHECK(strcmp(stream_id, STREAM) == 0);
    atomic_store(&o->render_first_frame, 1);
}

static void on_video_size(const char *stream_id, uint32_t width, uint32_t height, void *user_context) {
    struct observed *o = user_context;
    CHECK(strcmp(stream_id, STREAM) == 0 && height > 0);
    atomic_store(&o->video_width, (int)width);
}

static void on_player_quality(const char *stream_id, const struct zego_play_stream_quality *quality,
                              void *user_context) {
    struct observed *o = user_context;
    CHECK(strcmp(stream_id, STREAM) == 0 && quality != NULL);
    if (quality->video_recv_fps > 0 && quality->video_kbps > 0) {
        atomic_fetch_add(&o->player_quality_reports, 1);
    }
}

static void on_publisher_quality(const char *stream_id, const struct zego_publish_stream_quality *quality,
                                 void *user_context) {
    struct observed *o = user_context;
    CHECK(strcmp(stream_id, STREAM) == 0 && quality != NULL);
    if (quality->video_send_fps > 0 && quality->total_send_bytes > 0) {
        atomic_fetch_add(&o->publisher_quality_reports, 1);
    }
}

static zego_engine create_engine(const char *server, uint32_t app_id, const char *app_sign, struct observed *o) {
    struct zego_engine_profile profile = {
        .app_id = app_id, .app_sign = app_sign, .scenario = ZEGO_SCENARIO_DEFAULT, .server = server};
    zego_engine engine = 0;
    OK(zego_engine_create(&profile, &engine));
    CHECK(engine != 0);
    o->engine = engine;
    OK(zego_register_room_state_update_callback(engine, on_room_state_update, o));
    OK(zego_register_room_user_update_callback(engine, on_room_user_update, o));
    OK(zego_register_room_stream_update_callback(engine, on_room_stream_update, o));
    OK(zego_register_publisher_state_update_callback(engine, on_publisher_state_update, o));
    OK(zego_register_publisher_captured_video_first_frame_callback(engine, on_captured_first_frame, o));
    OK(zego_register_custom_video_render_captured_frame_callback(engine, on_captured_frame, o));
    OK(zego_register_player_state_update_callback(engine, on_player_state_update, o));
    OK(zego_register_player_recv_video_first_frame_callback(engine, on_recv_video_first_frame, o));
    OK(zego_register_custom_video_render_remote_frame_callback(engine, on_remote_frame, o));
    OK(zego_register_im_recv_broadcast_message_callback(engine, on_broadcast, o));
    OK(zego_register_im_send_broadcast_message_result_callback(engine, on_broadcast_result, o));
    OK(zego_register_player_audio_data_callback(engine, on_audio, o));
    OK(zego_register_player_render_video_first_frame_callback(engine, on_render_first_frame, o));
    OK(zego_register_player_video_size_changed_callback(engine, on_video_size, o));
    OK(zego_register_player_quality_update_callback(engine, on_player_quality, o));
    OK(zego_register_publisher_quality_update_callback(engine, on_publisher_quality, o));
    return engine;
}

static void login(struct observed *o, const char *user_id, const char *user_name) {
    struct zego_user user = {.user_id = user_id, .user_name = user_name};
    struct zego_room_config config = {.max_member_count = 0, .is_user_status_notify = true, .token = NULL};
    OK(zego_login_room(o->engine, ROOM, &user, &config));
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s WS_URL APP_ID APP_SIGN\n", argv[0]);
        return 2;
    }
    const char *server = argv[1];
    uint32_t app_id = (uint32_t)strtoul(argv[2], NULL, 10);
    const char *app_sign = argv[3];
    printf("zego-express %s\n", zego_get_version());
    CHECK(strcmp(zego_get_error_message(ZEGO_ERROR_COMMON_STREAM_ID_NULL), "stream_id is null or empty.") == 0);

    OK(zego_set_log_callback(on_log, NULL));
    OK(zego_set_log_level(ZEGO_LOG_LEVEL_INFO));

    zego_engine a = create_engine(server, app_id, app_sign, &anchor);
    zego_engine b = create_engine(server, app_id, app_sign, &audience);
    CHECK(a != b);

    /* Wrong state is reported at once. */
    CHECK(zego_start_publishing_stream(a, STREAM, ZEGO_PUBLISH_CHANNEL_MAIN) == ZEGO_ERROR_COMMON_NOT_LOGGED_IN);
    CHECK(zego_stop_playing_stream(b, STREAM) == ZEGO_ERROR_PLAYER_STREAM_NOT_PLAYED);

    login(&anchor, "c-anchor", "Anchor");
    WAIT_FOR("anchor logged in", atomic_load(&anchor.room_state) == ZEGO_ROOM_STATE_CONNECTED);

    OK(zego_start_preview(a, ZEGO_PUBLISH_CHANNEL_MAIN));
    WAIT_FOR("preview frames", atomic_load(&anchor.captured_frames) >= 5);
    CHECK(atomic_load(&anchor.captured_first_frame));
    OK(zego_start_publishing_stream(a, STREAM, ZEGO_PUBLISH_CHANNEL_MAIN));
    WAIT_FOR("anchor publishing", atomic_load(&anchor.publisher_state) == ZEGO_PUBLISHER_STATE_PUBLISHING);

    login(&audience, "c-audience", "Audience");
    WAIT_FOR("audience logged in", atomic_load(&audience.room_state) == ZEGO_ROOM_STATE_CONNECTED);
    WAIT_FOR("stream announced and played from the callback", atomic_load(&audience.play_started_in_callback));
    WAIT_FOR("audience playing", atomic_load(&audience.player_state) == ZEGO_PLAYER_STATE_PLAYING);
    WAIT_FOR("first video received", atomic_load(&audience.recv_video_first_frame));
    WAIT_FOR("30 I420 frames rendered", atomic_load(&audience.i420_frames) >= 30);
    CHECK(atomic_load(&audience.render_first_frame) && atomic_load(&audience.video_width) == 640);
    OK(zego_set_play_volume(b, STREAM, 50));
    WAIT_FOR("PCM audio", atomic_load(&audience.audio_chunks) >= 10);

    OK(zego_set_remote_render_format(b, ZEGO_VIDEO_FRAME_FORMAT_RGBA32));
    WAIT_FOR("10 RGBA frames rendered", atomic_load(&audience.rgba_frames) >= 10);
    CHECK(atomic_load(&audience.bad_frames) == 0);
    CHECK(atomic_load(&audience.users_seen) >= 1);

    int seq = -1;
    OK(zego_send_broadcast_message(a, ROOM, MESSAGE, &seq));
    WAIT_FOR("broadcast delivered", atomic_load(&audience.broadcasts_received) == 1);
    WAIT_FOR("broadcast result", atomic_load(&anchor.broadcast_result_seq) == seq);
    CHECK(atomic_load(&anchor.broadcast_result_code) == 0);

    WAIT_FOR("publisher quality report", atomic_load(&anchor.publisher_quality_reports) >= 1);
    WAIT_FOR("player quality report", atomic_load(&audience.player_quality_reports) >= 1);

    int samples = atomic_load(&audience.latency_samples);
    if (samples > 0) {
        printf("capture-to-render latency: mean %.1f ms, max %.1f ms over %d frames\n",
               (double)atomic_load(&audience.latency_sum_us) / samples / 1000.0,
               (double)atomic_load(&audience.latency_max_us) / 1000.0, samples);
    }

    /* Stop and leave; the audience destroys itself from inside its room_state_update callback. */
    OK(zego_stop_playing_stream(b, STREAM));
    CHECK(zego_stop_playing_stream(b, STREAM) == ZEGO_ERROR_PLAYER_STREAM_NOT_PLAYED);
    atomic_store(&audience.destroy_in_callback, 1);
    OK(zego_logout_room(b, NULL));
    WAIT_FOR("audience destroyed from its callback", atomic_load(&audience.destroyed_in_callback));
    CHECK(zego_login_room(b, ROOM, &(struct zego_user){"x", "x"}, NULL) == ZEGO_ERROR_COMMON_ENGINE_NOT_CREATED);

    OK(zego_stop_publishing_stream(a, ZEGO_PUBLISH_CHANNEL_MAIN));
    WAIT_FOR("anchor stopped publishing", atomic_load(&anchor.publisher_state) == ZEGO_PUBLISHER_STATE_NO_PUBLISH);
    OK(zego_stop_preview(a, ZEGO_PUBLISH_CHANNEL_MAIN));
    OK(zego_logout_room(a, ROOM));
    OK(zego_engine_destroy(a));
    CHECK(zego_engine_destroy(a) == ZEGO_ERROR_COMMON_ENGINE_NOT_CREATED);

    CHECK(atomic_load(&log_lines) > 0 && atomic_load(&log_reentered));
    OK(zego_set_log_callback(NULL, NULL));
    printf("flow complete: %d log lines, %d I420 + %d RGBA frames rendered\n", atomic_load(&log_lines),
           atomic_load(&audience.i420_frames), atomic_load(&audience.rgba_frames));
    return 0;
}
