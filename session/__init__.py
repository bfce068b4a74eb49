"""Session code without bpy (nor mathutils, bpy_extras): what runs in worker and render threads.

``photo`` (a photo's inputs and cache folder), ``renderers`` (frame renderers behind the
``Renderer`` contract), ``frames`` (the frame code's session half: keys, the session's
``FrameRenderer``, remembered frames), ``stopmotion`` (the resumable frame loop, on the engine's frame manifest),
``models`` (the engine and prepared photos, loaded once per session), ``download`` (model downloads
through the registry), ``deps`` (Python packages), ``jobs`` (worker-thread jobs) and ``errors``
(one-line reports). Blender data is read and written in blender/; operators/ connects the two.
tests/addon/test_layout.py checks that no module here imports Blender.
"""
