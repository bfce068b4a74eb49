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
    removals = _key_removals_and_copies(obj, keyed, numbers, objects, scene)
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
    removals()
    frames = [frame for frame, _, _ in edits]
    if scene is not None and frames:
        scene.frame_start, scene.frame_end, scene.frame_step = frames[0], frames[-1], 1
        scene.frame_set(frames[0])
    return frames


def _key_removals_and_copies(obj, keyed, numbers, objects, scene):
    """Copies and removals of the edits (`engine.transforms.FrameEdit` ``copies`` / ``visible``):
    copy j of the file (its place in each frame's ``copies``) becomes one object, a duplicate of
    the object it copies (sharing its mesh, as Alt+D), named so the copies sort in the file's
    order; each is keyed at the frames that list it and hidden ("Disable in Renders", keyed) at
    the others; objects are keyed hidden where an edit removes them. Checks everything first;
    returns the function that keys (after the objects' own keys)."""
    from .matrices import photo_copies

    per_copy = {}  # j -> {frame: Copy}
    for n, (_, edit) in zip(numbers, keyed):
        for j, c in enumerate(getattr(edit, "copies", ()) or ()):
            if not 0 <= c.of < len(objects):
                raise ValueError(f"keyframes: frame {n} copy {j + 1}: a copy of object {c.of + 1}, the photo "
                                 f"has {len(objects)}")
            first = next(iter(per_copy.get(j, {}).values()), None)
            if first is not None and first.of != c.of:
                raise ValueError(f"keyframes: copy {j + 1} copies object {first.of + 1} in one frame and "
                                 f"object {c.of + 1} in frame {n}: keep each copy's place in 'copies' for one object")
            per_copy.setdefault(j, {})[n] = c
    def shown(edit):  # one bool per object (a bare matrix shows them all)
        flags = tuple(edit.shown()[:len(edit.objects)]) if hasattr(edit, "shown") else ()
        return flags + (True,) * (len(objects) - len(flags))

    removes = any(not all(shown(edit)) for _, edit in keyed)
    if per_copy and photo_copies(obj, scene):
        raise ValueError("keyframes: the photo already has copies; key copies into a photo without any")

    def key():
        photo_world = photo_frame(obj)
        for n, (_, edit) in sorted(zip(numbers, keyed), key=lambda item: item[0]) if removes else ():
            for item, flag in zip(objects, shown(edit)):
                item.hide_render = not flag
                item.keyframe_insert("hide_render", frame=n)
        for item in objects if removes else ():
            item.hide_render = False
        name = obj.name.removesuffix(" Object").removesuffix(" Object 1")
        for j in sorted(per_copy):
            frames = per_copy[j]
            source = objects[next(iter(frames.values())).of]
            copy = source.copy()  # shares the mesh and copies Object.dh: its camera, rest pose, number
            copy.animation_data_clear()
            copy.name = f"{name} Copy {j + 1:03d}"
            for collection in source.users_collection:
                collection.objects.link(copy)
            copy.rotation_mode = "QUATERNION"
            rest, previous = rest_world_matrix(copy, photo_world), None
            for n in sorted(numbers):
                c = frames.get(n)
                if c is not None:
                    previous = _key_matrix(copy, world_matrix_for(c.matrix, photo_world, rest), previous)
                    for path in ("location", "rotation_quaternion", "scale"):
                        copy.keyframe_insert(path, frame=n)
                copy.hide_render = c is None or not c.visible
                copy.keyframe_insert("hide_render", frame=n)
            copy.hide_render = False
    return key
