"""``a2v generate`` as a user runs it: any photo and any audio in, the whole photo back with the
audio as given; bad input gives one line naming the file and the cause, exit code 2, nothing written.

The checkpoint is the shared tiny speech-driven GAN (``sdgan_checkpoint``, 64² frames): the fastest
generator, and what is tested here (alignment, paste-back, audio, errors) is the same for every model.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile

from a2v.io.audio import load_audio
from a2v.io.video import probe_video, read_frames


def test_generate_cli_any_face_any_audio(sdgan_checkpoint, tmp_path, grid_sample):
    """``a2v generate --batch`` with one model load: a face photo that is not from GRID (scikit-image's
    astronaut, 512×512) + 10 s of speech at 44.1 kHz mono, and a photo with no face. The first gives
    the whole photo back (512×512, the face pasted in, the rest the photo's own pixels) with the
    audio as given (44.1 kHz, mono) lasting exactly the video's 250 frames; the second is reported
    with its cause, nothing written, exit code 2. ``--crop-only`` gives the aligned crops."""
    import cv2
    from skimage import data

    from a2v.io.audio import probe_audio
    from a2v.io.video import _audio_seconds

    image = tmp_path / "astronaut.png"
    photo = data.astronaut()
    cv2.imwrite(str(image), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), read_frames(grid_sample / "s1" / "bgbn8n.mpg")[0, :96, :96])  # background, no face
    speech = np.concatenate([load_audio(p, 44100) for p in sorted((grid_sample / "s1").glob("*.mpg"))[:4]])
    wav = tmp_path / "speech44k.wav"
    soundfile.write(wav, speech[: 10 * 44100], 44100)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"image,audio,output\nastronaut.png,speech44k.wav,out.mp4\nwall.png,{wav},x.mp4\n")
    ckpt = sdgan_checkpoint
    proc = subprocess.run([sys.executable, "-m", "a2v", "generate", "--batch", str(jobs), "--checkpoint", str(ckpt)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "1 of 2 videos failed" in proc.stderr, proc.stderr
    assert "wall.png: no face found" in proc.stdout and not (tmp_path / "x.mp4").exists()
    out = tmp_path / "out.mp4"
    frames = read_frames(out)
    assert frames.shape == (250, 512, 512, 3)
    info = probe_audio(out)
    assert (info.sample_rate, info.channels, info.codec) == (44100, 1, "aac")
    assert abs(_audio_seconds(out) - 250 / 25) < 1e-3
    corner = np.abs(frames[:, :64, :64].astype(np.int16) - photo[:64, :64]).mean()  # far from the face: the photo
    from a2v.generate import align_face

    _, matrix = align_face(photo, 64)  # the mouth centre of the template, in photo pixels
    cx, cy = cv2.invertAffineTransform(matrix.astype(np.float64)) @ np.array([32.0, 0.71 * 64, 1.0])
    box = (slice(int(cy) - 20, int(cy) + 20), slice(int(cx) - 30, int(cx) + 30))
    face = np.abs(frames[:, box[0], box[1]].astype(np.int16) - photo[box]).mean()
    print(f"mean |output - photo| (0-255): corner {corner:.2f}, face {face:.2f}")
    assert corner < 4 and face > 2 * corner
    crops = tmp_path / "crops.mp4"
    clip = grid_sample / "s1" / "bgbn8n.mpg"
    proc = subprocess.run([sys.executable, "-m", "a2v", "generate", "--image", str(image), "--audio", str(clip),
                           "--checkpoint", str(ckpt), "-o", str(crops), "--crop-only"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert probe_video(crops).width == 64 and probe_audio(crops).sample_rate == probe_audio(clip).sample_rate


def test_generate_bad_input_one_line_exit_2_nothing_written(sdgan_checkpoint, tmp_path, grid_sample):
    """Each bad input of ``a2v generate`` gives one line naming the file and the cause, exit code 2,
    and no output file: no face, two faces of the same size, silent audio, a recording without
    speech (room noise), 0-byte image and audio,
    an image smaller than the model's crop. (One ``--batch`` run for all; one plain run for the exit
    code and the single stderr line.)"""
    import cv2

    frame = read_frames(grid_sample / "s1" / "bgbn8n.mpg")[0]  # 288×360 RGB, one face
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(tmp_path / "face.png"), bgr)
    cv2.imwrite(str(tmp_path / "wall.png"), bgr[:96, :96])
    cv2.imwrite(str(tmp_path / "two.png"), np.concatenate([bgr, bgr], axis=1))  # the same face twice, side by side
    cv2.imwrite(str(tmp_path / "tiny.png"), cv2.resize(bgr, (48, 40)))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "empty.wav").write_bytes(b"")
    soundfile.write(tmp_path / "silence.wav", np.zeros(16000 * 2, np.float32), 16000)
    speech = grid_sample / "s1" / "bgbn8n.mpg"
    # the room noise before the first word (alignment: "0 20500 sil", i.e. 0–0.51 s), six times over:
    # a real recording without speech, loud enough (-34 dBFS) to pass the silence floor
    lead = load_audio(speech, 44100)[: int(0.45 * 44100)]
    soundfile.write(tmp_path / "room.wav", np.tile(lead, 6), 44100)
    cases = {  # image, audio -> the cause the line must give
        "wall": ("wall.png", speech, "wall.png: no face found"),
        "two": ("two.png", speech, "two.png: 2 faces in frame 0"),
        "silent": ("face.png", "silence.wav", "silence.wav: audio is silent"),
        "no_speech": ("face.png", "room.wav", "room.wav: no speech detected in 2.70 s of audio"),
        "empty_image": ("empty.png", speech, "empty.png: file is empty (0 bytes)"),
        "empty_audio": ("face.png", "empty.wav", "empty.wav: file is empty (0 bytes)"),
        "tiny": ("tiny.png", speech, "tiny.png: image is 48×40 pixels, smaller than the model's 64×64 face crop"),
    }
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("image,audio,output\n" + "".join(f"{i},{a},{name}.mp4\n" for name, (i, a, _) in cases.items()))
    ckpt = sdgan_checkpoint
    proc = subprocess.run([sys.executable, "-m", "a2v", "generate", "--batch", str(jobs), "--checkpoint", str(ckpt)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and f"{len(cases)} of {len(cases)} videos failed" in proc.stderr, proc.stderr
    for name, (_, _, cause) in cases.items():
        assert cause in proc.stdout, (name, proc.stdout)
        assert not list(tmp_path.glob(f"{name}.mp4*")) and not list(tmp_path.glob(f".{name}*")), name
    proc = subprocess.run([sys.executable, "-m", "a2v", "generate", "--image", str(tmp_path / "two.png"), "--audio",
                           str(speech), "--checkpoint", str(ckpt), "-o", str(tmp_path / "one.mp4")],
                          capture_output=True, text=True, timeout=600)
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert proc.returncode == 2 and len(errors) == 1 and "two.png: 2 faces" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "one.mp4").exists()
