"""engine.transforms: file formats, conventions, checks."""
import json

import numpy as np
import pytest

from engine.errors import InputError
from engine.transforms import (frame_to_matrix, load_keyframes, load_transforms, object_centroid,
                               parse_transforms, rotation_matrix, validate_transform)

S = np.diag([-1.0, 1.0, -1.0, 1.0])


def write(tmp_path, obj, name="t.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def test_matrix_frames_and_keyframe_numbers(tmp_path):
    M = np.eye(4)
    M[:3, :3] = 1.5 * rotation_matrix([0, 1, 0], 30)
    M[:3, 3] = [0.1, 0.2, -0.3]
    p = write(tmp_path, {"frames": [{"matrix": M.tolist(), "frame": 12}, {"matrix": np.eye(4).tolist()}]})
    Ts = load_transforms(p)
    assert len(Ts) == 2 and Ts[0].matrix.dtype == np.float64 and Ts[0].camera is None
    np.testing.assert_allclose(Ts[0].matrix, M)
    np.testing.assert_allclose(np.asarray(Ts[0]), M)  # single-object callers may take the matrix
    keys = load_keyframes(p)
    assert [k for k, _ in keys] == [12, None]


def test_axis_angle_about_centroid_and_pivot():
    c = np.array([0.5, -0.2, -4.0])
    T = frame_to_matrix({"rotation_axis": [0, 0, 2], "rotation_angle": 90, "scale": 2.0,
                         "translation": [1, 0, 0]}, centroid=c)
    np.testing.assert_allclose(T @ np.append(c, 1), np.append(c + [1, 0, 0], 1))  # pivot fixed, then moved
    p = c + [1, 0, 0]
    np.testing.assert_allclose((T @ np.append(p, 1))[:3], c + [0, 2, 0] + [1, 0, 0], atol=1e-12)
    T2 = frame_to_matrix({"rotation_axis": [1, 0, 0], "rotation_angle": 180, "pivot": [0, 1, 0]})
    np.testing.assert_allclose(T2 @ [0, 1, 0, 1], [0, 1, 0, 1], atol=1e-12)
    assert np.allclose(frame_to_matrix({"translation": [1, 2, 3]})[:3, 3], [1, 2, 3])  # no centroid needed


def test_pytorch3d_convention():
    c = np.array([0.3, 0.1, -5.0])
    ref = {"translation": [0.2, 0.1, 0.4], "rotation_axis": [0, 1, 0], "rotation_angle": 40}
    T = frame_to_matrix(ref, c, convention="pytorch3d")
    # The same edit built in the PyTorch3D frame (pivot S c) and conjugated by S.
    Tp = frame_to_matrix(ref, (S[:3, :3] @ c))
    np.testing.assert_allclose(T, S @ Tp @ S, atol=1e-12)
    # A p3d translation of +z (forward) moves the object away from the camera: -z in our frame.
    np.testing.assert_allclose(frame_to_matrix({"translation": [0, 0, 1]}, convention="pytorch3d")[:3, 3], [0, 0, -1])
    M = frame_to_matrix({"rotation_axis": [0, 0, 1], "rotation_angle": 10, "translation": [1, 2, 3]}, c)
    np.testing.assert_allclose(frame_to_matrix({"matrix": M.tolist()}, convention="pytorch3d"), S @ M @ S)


def test_reference_layout_in_natural_order(tmp_path):
    obj = {f"edit_{k}": {"translation": [k, 0, 0], "rotation_axis": [0, 1, 0], "rotation_angle": 0}
           for k in (10, 2, 1)}
    Ts = load_transforms(write(tmp_path, obj), convention="pytorch3d", centroid=[0, 0, -3])
    assert [T.matrix[0, 3] for T in Ts] == [-1, -2, -10]


@pytest.mark.parametrize("matrix,message", [
    (np.diag([1.0, 2.0, 1.0, 1.0]), "non-uniform scale"),
    (np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "shear"),
    (np.diag([0.0, 0.0, 0.0, 1.0]), "singular"),
    (np.diag([-1.0, 1.0, 1.0, 1.0]), "mirror"),
    (np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0.5, 1.0]]), "projective"),
    (np.full((4, 4), np.nan), "NaN"),
    (np.eye(3), "4x4"),
])
def test_validate_transform_rejects(matrix, message):
    with pytest.raises(InputError, match=message):
        validate_transform(matrix, "frame 3")


def test_float32_rounding_is_accepted():
    M = np.eye(4)
    M[:3, :3] = 1.16 * rotation_matrix([0, 1, 0], 4.6)
    checked = validate_transform(M.astype(np.float32))
    assert checked.dtype == np.float64 and np.allclose(checked, M, atol=1e-6)


@pytest.mark.parametrize("text,message", [
    ('{"frames": [{"matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,NaN],[0,0,0,1]]}]}', "frame 1.*NaN"),
    ('{"frames": [{"translation": [1, 2]}]}', "translation"),
    ('{"frames": [{"rotation_angle": 30}]}', "without 'rotation_axis'"),
    ('{"frames": [{"rotation_axis": [0,1,0], "rotation_angle": 30}]}', "centroid"),
    ('{"frames": [{"scale": 0}]}', "scale"),
    ('{"frames": [{"translate": [0,0,1]}]}', "unknown key"),
    ('{"frames": [{"matrix": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]], "scale": 2}]}', "not both"),
    ('{"frames": [{"frame": "x"}]}', "frame number"),
    ('{"frames": []}', "no frames"),
    ('{"frames": [', "not valid JSON"),
    ('[1, 2]', "frame 1"),
])
def test_bad_files_give_named_errors(tmp_path, text, message):
    p = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as err:
        load_transforms(p)
    assert "t.json" in str(err.value)


def test_parse_and_centroid():
    depth = np.full((4, 6), 2.0)
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:4] = True  # symmetric about the centre: centroid on the optical axis
    c = object_centroid(depth, mask)
    np.testing.assert_allclose(c, [0, 0, -2.0], atol=1e-12)
    Ts = parse_transforms({"frames": [{"rotation_axis": [0, 1, 0], "rotation_angle": 180}]}, centroid=c)
    np.testing.assert_allclose(Ts[0].matrix @ [0, 0, -2, 1], [0, 0, -2, 1], atol=1e-12)


def test_objects_and_camera_frames(tmp_path):
    M = np.eye(4)
    M[:3, :3] = rotation_matrix([0, 1, 0], 5)
    M[:3, 3] = [0.3, 0, 0.1]
    cents = [[0.5, 0, -4.0], [-1.0, 0, -6.0]]
    p = write(tmp_path, {"frames": [
        {"objects": [{"translation": [1, 0, 0]}, {"rotation_axis": [0, 1, 0], "rotation_angle": 90}], "frame": 3},
        {"camera": M.tolist()},
        {"objects": [{}], "camera": {"translation": [0, 0, 1]}},
    ]})
    keys = load_keyframes(p, centroid=cents)
    assert [k for k, _ in keys] == [3, None, None]
    e1, e2, e3 = (e for _, e in keys)
    assert len(e1.objects) == 2 and e1.camera is None and not e1.moves_camera
    np.testing.assert_allclose(e1.objects[0][:3, 3], [1, 0, 0])
    np.testing.assert_allclose(e1.objects[1] @ np.append(cents[1], 1), np.append(cents[1], 1), atol=1e-12)
    assert e2.moves_camera and np.allclose(e2.camera, M) and np.allclose(e2.objects[0], np.eye(4))
    np.testing.assert_allclose(e2.object_transforms()[0], M)
    np.testing.assert_allclose(e3.camera[:3, 3], [0, 0, 1])
    with pytest.raises(InputError, match="camera"):
        e2.matrix  # a camera move is not one object's matrix
    np.testing.assert_allclose(object_centroid(np.full((4, 6), 2.0), np.stack([np.eye(4, 6, dtype=bool)] * 2)),
                               [object_centroid(np.full((4, 6), 2.0), np.eye(4, 6, dtype=bool))] * 2)


@pytest.mark.parametrize("frame,message", [
    ({"objects": {"matrix": np.eye(4).tolist()}}, "must be a list"),
    ({"objects": [{}, {}, {}]}, "3 objects"),
    ({"camera": np.diag([1.0, 2.0, 1.0, 1.0]).tolist()}, "camera"),
    ({"objects": [], "matrix": np.eye(4).tolist()}, "unknown key"),
])
def test_bad_object_and_camera_frames(frame, message):
    with pytest.raises(InputError, match=message):
        parse_transforms({"frames": [frame]}, centroid=[[0, 0, -2.0], [0, 0, -3.0]])


def test_one_rule_for_the_same_edit():
    """FrameEdit.key, is_identity and same_matrix agree: float noise far below a micrometre is the
    same edit (a pose composed twice from Blender's float32 keys), a real move is another."""
    from engine.transforms import EDIT_DECIMALS, FrameEdit, same_matrix

    T = np.eye(4)
    T[:3, 3] = [0.2, -0.1, 0.05]
    noisy = T + 1e-9
    noisy[3] = [0, 0, 0, 1]
    moved = T.copy()
    moved[0, 3] += 10.0 ** -(EDIT_DECIMALS - 2)
    a, b, c = (FrameEdit.of(M, 2) for M in (T, noisy, moved))
    assert a.key() == b.key() and same_matrix(T, noisy)
    assert a.key() != c.key() and not same_matrix(T, moved)
    neg_zero = np.eye(4) * 1.0
    neg_zero[0, 1] = -0.0
    assert FrameEdit.of(neg_zero).key() == FrameEdit.of(np.eye(4)).key()
    assert FrameEdit.of(np.eye(4) + np.diag([1e-9, 0, 0, 0])).is_identity()
    assert not FrameEdit.of(moved).is_identity()
    # a removal is another edit even where no matrix differs
    from engine.transforms import frame_to_edit

    hidden = FrameEdit.of(frame_to_edit({"objects": [{"matrix": T.tolist(), "visible": False}]}), 1)
    assert hidden.key() != FrameEdit.of(T).key() and not hidden.is_identity()


def test_frames_with_equal_keys_point_at_the_first_of_them():
    """The one de-duplication rule: each frame maps to the first frame with its key; only those
    firsts are computed, in order."""
    from engine.transforms import FrameEdit, distinct, first_occurrences

    assert first_occurrences(["a", "b", "a", "c", "b", "a"]) == [0, 1, 0, 3, 1, 0]
    assert distinct(["a", "b", "a", "c", "b", "a"]) == [0, 1, 3]
    assert first_occurrences([]) == [] and distinct([]) == []
    # by FrameEdit.key: a pose held with float noise is the same frame, a real move is not
    T = np.eye(4)
    T[0, 3] = 0.2
    keys = [FrameEdit.of(M).key() for M in (np.eye(4), T, T + 1e-9 * (np.arange(16).reshape(4, 4) < 12), np.eye(4))]
    assert first_occurrences(keys) == [0, 1, 1, 0]
