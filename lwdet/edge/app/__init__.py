"""The Pi app's parts (deploy/raspberry-pi/detect.py): frame ``sources`` (camera, video, folder, stream, with
reconnects), ``outputs`` (display, saver, JSONL sink, meters) and the ``overlay`` drawn on frames. OpenCV + numpy;
the detector itself is ``lwdet.edge.NcnnDetector``.
"""
