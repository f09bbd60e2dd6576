"""Audio front end: waveform -> per-frame 0.5 s log-spectrogram (257 x 48), as in STANet (spec section 1).

Modules (import the one you need; this package file imports nothing, so ``io``/``ring`` stay torch-free):
``io`` (PyAV decoding to 16 kHz mono, video frame timing), ``alignment`` (which samples belong to which
frame), ``ring`` (thread-safe audio ring buffer for streaming), ``spectrogram`` (the torch transform and
its scipy reference; it exports inside the students' audio graph), ``features`` (per-file features and h5 files).
"""
