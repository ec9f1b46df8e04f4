// When a video track shows its first frame and when its size changes, seen through a detached, muted <video>
// element that plays the track (the track's frames are decoded once, whoever watches them).

export class FrameWatcher {
  #video = null;

  /**
   * @param {MediaStreamTrack} track a video track
   * @param {{firstFrame?: () => void, sizeChanged?: (width: number, height: number) => void}} on
   */
  constructor(track, on) {
    if (typeof document === 'undefined') return;
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.autoplay = true;
    let first = true;
    let size = [0, 0];
    const frame = () => {
      if (first && video.videoWidth > 0) {
        first = false;
        on.firstFrame?.();
      }
      const now = [video.videoWidth, video.videoHeight];
      if (now[0] > 0 && (now[0] !== size[0] || now[1] !== size[1])) {
        size = now;
        on.sizeChanged?.(now[0], now[1]);
      }
    };
    video.addEventListener('loadeddata', frame);
    video.addEventListener('resize', frame);
    video.srcObject = new MediaStream([track]);
    video.play()?.catch?.(() => {});
    this.#video = video;
  }

  close() {
    if (!this.#video) return;
    this.#video.srcObject = null;
    this.#video = null;
  }
}
