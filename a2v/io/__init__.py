"""Media input/output through ffmpeg (ffmpeg-python, with the ffmpeg binary of the imageio-ffmpeg wheel)."""
