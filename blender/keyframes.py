"""Frame edits -> keyframes on a photo's objects and camera (Blender interpolates between keys).

Rotations are keyed as quaternions so interpolation takes the short way round without gimbal flips.
"""
import numpy as np

from .matrices import moving_objects, photo_frame, rest_world_matrix, to_matrix, world_matrix_for


def _key_matrix(item, matrix_world, previous):
    """Set and key item's location / rotation / scale; returns its quaternion (for the next key)."""
    item.matrix_world = matrix_world  # any parent is solved for
    quaternion = item.rotation_quaternion.copy()
    if previous is not None and previous.dot(quaternion) < 0.0:
        item.rotation_quaternion = -quaternion  # same rotation, interpolates the short way
    return item.rotation_quaternion.copy()


def key_transforms(obj, keyed, scene=None):
    """Key the photo whose handle is ``obj`` (``obj.dh`` names its camera and rest poses).

    keyed: list of (frame or None, edit): an `engine.transforms.FrameEdit` (one camera-frame
    transform per object in mask order, and the camera's move p_new = K p_old or None) or a bare
    (4, 4) transform of the first object; None frames number 1, 2, 3, ... in order. Objects an
    edit leaves out stay at rest at that key; the camera is keyed only when some edit moves it.
    Returns the sorted list of keyed frame numbers; sets the scene's frame range to them.
    """
    numbers = [index + 1 if frame is None else int(frame) for index, (frame, _) in enumerate(keyed)]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"keyframes: frame numbers repeat ({sorted(numbers)})")
    objects = moving_objects(obj, scene)
    camera = obj.dh.camera
    photo_world = photo_frame(obj)
    rests = [rest_world_matrix(o, photo_world) for o in objects]
    edits = []
    for n, (_, edit) in zip(numbers, keyed):
        mats = list(getattr(edit, "objects", None) or (edit,))
        if len(mats) > len(objects):
            raise ValueError(f"keyframes: frame {n} moves {len(mats)} objects, the photo has {len(objects)}")
        edits.append((n, mats + [np.eye(4)] * (len(objects) - len(mats)), getattr(edit, "camera", None)))
    edits.sort(key=lambda item: item[0])
    keys_camera = any(move is not None for _, _, move in edits)
    for item in objects + ([camera] if keys_camera else []):
        item.rotation_mode = "QUATERNION"
    previous = [None] * (len(objects) + 1)
    photo = np.array(photo_world)
    for frame, mats, move in edits:
        for k, (item, rest, T) in enumerate(zip(objects, rests, mats)):
            previous[k] = _key_matrix(item, world_matrix_for(T, photo_world, rest), previous[k])
        if keys_camera:  # C = B K^-1 (blender/matrices.py)
            K = np.eye(4) if move is None else np.asarray(move, np.float64)
            previous[-1] = _key_matrix(camera, to_matrix(photo @ np.linalg.inv(K)), previous[-1])
        for item in objects + ([camera] if keys_camera else []):
            item.keyframe_insert("location", frame=frame)
            item.keyframe_insert("rotation_quaternion", frame=frame)
            item.keyframe_insert("scale", frame=frame)
    frames = [frame for frame, _, _ in edits]
    if scene is not None and frames:
        scene.frame_start, scene.frame_end, scene.frame_step = frames[0], frames[-1], 1
        scene.frame_set(frames[0])
    return frames
