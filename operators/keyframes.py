"""Camera-frame transforms -> object keyframes (Blender interpolates between the keys).

Rotations are keyed as quaternions so interpolation takes the short way round without gimbal flips.
"""
from .matrices import rest_world_matrix, world_matrix_for


def key_transforms(obj, keyed, scene=None):
    """Key ``obj`` (an imported object: ``obj.dh`` names its camera and rest pose).

    keyed: list of (frame or None, (4, 4) camera-frame transform); None frames number 1, 2, 3, ...
    in order. Returns the sorted list of keyed frame numbers; sets the scene's frame range to them.
    """
    numbers = [index + 1 if frame is None else int(frame) for index, (frame, _) in enumerate(keyed)]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"keyframes: frame numbers repeat ({sorted(numbers)})")
    camera_world = obj.dh.camera.matrix_world.copy()
    rest = rest_world_matrix(obj, camera_world)
    obj.rotation_mode = "QUATERNION"
    numbered = sorted(zip(numbers, (transform for _, transform in keyed)), key=lambda item: item[0])
    frames, previous = [], None
    for frame, transform in numbered:
        obj.matrix_world = world_matrix_for(transform, camera_world, rest)  # any parent is solved for
        quaternion = obj.rotation_quaternion.copy()
        if previous is not None and previous.dot(quaternion) < 0.0:
            obj.rotation_quaternion = -quaternion  # same rotation, interpolates the short way
        previous = obj.rotation_quaternion.copy()
        obj.keyframe_insert("location", frame=frame)
        obj.keyframe_insert("rotation_quaternion", frame=frame)
        obj.keyframe_insert("scale", frame=frame)
        frames.append(frame)
    if scene is not None and frames:
        scene.frame_start, scene.frame_end, scene.frame_step = frames[0], frames[-1], 1
        scene.frame_set(frames[0])
    return frames
