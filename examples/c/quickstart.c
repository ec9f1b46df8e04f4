/*
 * Quickstart: an anchor publishes the synthetic camera and microphone, a viewer in the same room plays it and counts
 * decoded frames; then both stop, log out and are destroyed.
 *
 *   cc -std=c11 -pthread -I include examples/c/quickstart.c target/release/libzego_express.so \
 *      -Wl,-rpath,target/release -o quickstart
 *   ./quickstart [ws://127.0.0.1:9180/ws] [frames]
 *
 * The server URL may also come from $ZEGO_SERVER_URL, the app from $ZEGO_APP_ID / $ZEGO_APP_SIGN (default: the
 * server's development app). Exits 0 on success, 1 naming the step that failed.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zego_express.h"

#define STEP_TIMEOUT_MS 10000
#define DEV_APP_ID "1234567890"
#define DEV_APP_SIGN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* What the callbacks report, read by the main thread. Callbacks run on each engine's callback thread. */
struct progress {
    atomic_int publisher_state;
    atomic_int player_state;
    atomic_int frames;
    atomic_uint_fast64_t first_frame_us;
};

static uint64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Exits with a message when a call returns an error code. */
static void ok(int code, const char *what) {
    if (code != 0) {
        fprintf(stderr, "quickstart failed: %s returned %d: %s\n", what, code, zego_get_error_message(code));
        exit(1);
    }
}

/* Polls until `*value == want` or the step times out. */
static void wait_for(atomic_int *value, int want, const char *step) {
    uint64_t deadline = now_us() + (uint64_t)STEP_TIMEOUT_MS * 1000u;
    while (atomic_load(value) != want) {
        if (now_us() > deadline) {
            fprintf(stderr, "quickstart failed: timed out waiting for %s\n", step);
            exit(1);
        }
        sleep_ms(5);
    }
}

static void on_publisher_state(const char *stream_id, int32_t state, int error_code, const char *extended_data,
                               void *user_context) {
    struct progress *p = user_context;
    (void)extended_data;
    printf("anchor: publisher %s state=%d code=%d\n", stream_id, state, error_code);
    atomic_store(&p->publisher_state, state);
}

static void on_player_state(const char *stream_id, int32_t state, int error_code, const char *extended_data,
                            void *user_context) {
    struct progress *p = user_context;
    (void)extended_data;
    printf("viewer: player %s state=%d code=%d\n", stream_id, state, error_code);
    atomic_store(&p->player_state, state);
}

/* The planes (`data`) are valid only during this call; copy what you keep. */
static void on_frame(const char *stream_id, const uint8_t *const *data, const uint32_t *data_length,
                     const struct zego_video_frame_param *param, void *user_context) {
    struct progress *p = user_context;
    (void)stream_id;
    (void)data;
    (void)data_length;
    (void)param;
    if (atomic_fetch_add(&p->frames, 1) == 0) atomic_store(&p->first_frame_us, now_us());
}

static zego_engine create_engine(uint32_t app_id, const char *app_sign, const char *server) {
    struct zego_engine_profile profile = {
        .app_id = app_id, .app_sign = app_sign, .scenario = ZEGO_SCENARIO_DEFAULT, .server = server};
    zego_engine engine = 0;
    ok(zego_engine_create(&profile, &engine), "zego_engine_create");
    return engine;
}

int main(int argc, char **argv) {
    const char *server = argc > 1 ? argv[1] : getenv("ZEGO_SERVER_URL");
    if (server == NULL) server = "ws://127.0.0.1:9180/ws";
    int wanted = argc > 2 ? atoi(argv[2]) : 30;
    const char *app_id_text = getenv("ZEGO_APP_ID") ? getenv("ZEGO_APP_ID") : DEV_APP_ID;
    const char *app_sign = getenv("ZEGO_APP_SIGN") ? getenv("ZEGO_APP_SIGN") : DEV_APP_SIGN;
    uint32_t app_id = (uint32_t)strtoul(app_id_text, NULL, 10);

    char suffix[16], room[64], stream[64], anchor_id[64], viewer_id[64];
    snprintf(suffix, sizeof suffix, "%08lx", (unsigned long)(now_us() & 0xffffffffu));
    snprintf(room, sizeof room, "quickstart-%s", suffix);
    snprintf(stream, sizeof stream, "quickstart-stream-%s", suffix);
    snprintf(anchor_id, sizeof anchor_id, "anchor-%s", suffix);
    snprintf(viewer_id, sizeof viewer_id, "viewer-%s", suffix);
    printf("zego_express %s, server %s\n", zego_get_version(), server);

    static struct progress anchor_progress, viewer_progress;
    atomic_init(&anchor_progress.publisher_state, ZEGO_PUBLISHER_STATE_NO_PUBLISH);
    atomic_init(&viewer_progress.player_state, ZEGO_PLAYER_STATE_NO_PLAY);

    zego_engine anchor = create_engine(app_id, app_sign, server);
    zego_engine viewer = create_engine(app_id, app_sign, server);
    ok(zego_register_publisher_state_update_callback(anchor, on_publisher_state, &anchor_progress), "register");
    ok(zego_register_player_state_update_callback(viewer, on_player_state, &viewer_progress), "register");
    ok(zego_register_custom_video_render_remote_frame_callback(viewer, on_frame, &viewer_progress), "register");

    struct zego_user anchor_user = {.user_id = anchor_id, .user_name = "Anchor"};
    struct zego_user viewer_user = {.user_id = viewer_id, .user_name = "Viewer"};
    ok(zego_login_room(anchor, room, &anchor_user, NULL), "zego_login_room");
    ok(zego_login_room(viewer, room, &viewer_user, NULL), "zego_login_room");
    ok(zego_start_publishing_stream(anchor, stream, ZEGO_PUBLISH_CHANNEL_MAIN), "zego_start_publishing_stream");
    wait_for(&anchor_progress.publisher_state, ZEGO_PUBLISHER_STATE_PUBLISHING, "publishing");

    uint64_t started = now_us();
    ok(zego_start_playing_stream(viewer, stream, NULL), "zego_start_playing_stream");
    wait_for(&viewer_progress.player_state, ZEGO_PLAYER_STATE_PLAYING, "playing");
    uint64_t deadline = now_us() + (uint64_t)STEP_TIMEOUT_MS * 1000u;
    while (atomic_load(&viewer_progress.frames) < wanted) {
        if (now_us() > deadline) {
            fprintf(stderr, "quickstart failed: timed out waiting for %d frames (got %d)\n", wanted,
                    atomic_load(&viewer_progress.frames));
            return 1;
        }
        sleep_ms(5);
    }
    printf("first frame %.0f ms after zego_start_playing_stream\n",
           (double)(atomic_load(&viewer_progress.first_frame_us) - started) / 1000.0);

    ok(zego_stop_playing_stream(viewer, stream), "zego_stop_playing_stream");
    wait_for(&viewer_progress.player_state, ZEGO_PLAYER_STATE_NO_PLAY, "stopped playing");
    ok(zego_stop_publishing_stream(anchor, ZEGO_PUBLISH_CHANNEL_MAIN), "zego_stop_publishing_stream");
    wait_for(&anchor_progress.publisher_state, ZEGO_PUBLISHER_STATE_NO_PUBLISH, "stopped publishing");
    ok(zego_logout_room(viewer, room), "zego_logout_room");
    ok(zego_logout_room(anchor, room), "zego_logout_room");
    ok(zego_engine_destroy(viewer), "zego_engine_destroy");
    ok(zego_engine_destroy(anchor), "zego_engine_destroy");
    printf("ok: %d frames decoded, both engines destroyed\n", atomic_load(&viewer_progress.frames));
    return 0;
}
