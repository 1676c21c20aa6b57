"""Face landmarks (dlib / FAN), head pose, similarity alignment, eye aspect ratio and keypoint heatmaps."""
