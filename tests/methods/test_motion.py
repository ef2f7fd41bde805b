"""Frame-to-frame motion shared by the training-free methods: DIS flow at a reduced size, warping, point tracking."""

import cv2
import numpy as np

from vng.methods.motion import OpticalFlow, camera_residual, moving_region, sample, track_points, warp


def test_warp_follows_backward_flow():
    array = np.zeros((10, 12), np.float32)
    array[2:5, 3:6] = 1.0
    flow = np.zeros((10, 12, 2), np.float32)
    flow[..., 0] = -2.0  # every pixel came from 2 px to its left: the content moved right by 2
    moved = warp(array, flow, fill=-1.0)
    np.testing.assert_array_equal(moved[2:5, 5:8], 1.0)
    assert moved[:, :2].tolist() == [[-1.0, -1.0]] * 10 and moved[2:5, 3:5].max() == 0.0


def test_warp_carries_a_mask():
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:10] = True
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = -3  # every pixel of the current frame was 3 px further left in the previous frame
    np.testing.assert_array_equal(warp(mask, flow, fill=0.0) > 0.5, np.roll(mask, 3, axis=1))


def test_track_points_drops_what_fails_the_forward_backward_check():
    forward = np.zeros((20, 20, 2), np.float32)
    forward[..., 0] = 3.0
    backward = -forward
    backward[10:, :, 0] = 0.0  # the lower half does not come back: occluded
    xy = np.array([[2, 2], [2, 15], [18, 3]], np.float32)
    np.testing.assert_array_equal(track_points(xy, forward, backward, tolerance=1.0), [[5, 2]])  # 3rd leaves


def test_optical_flow_is_computed_small_and_returned_in_frame_pixels():
    """A smooth texture shifted 8 px right and 4 px down between two 320x240 frames, flow computed at 120 px: the
    backward flow is (-8, -4) frame px and the forward flow (8, 4) inside the frame."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (300, 400)).astype(np.float32), (0, 0), 6)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    first = np.repeat(texture[20:260, 20:340, None], 3, 2)
    second = np.repeat(texture[16:256, 12:332, None], 3, 2)  # content moved by (+8, +4)
    flow = OpticalFlow(320, 240, flow_size=120, preset=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = flow.grey(first)
    assert grey.shape == (120, 160)
    backward, forward = flow(flow.grey(second), grey), flow(grey, flow.grey(second))
    assert backward.shape == forward.shape == (240, 320, 2)
    inner = (slice(40, 200), slice(40, 280))
    np.testing.assert_allclose(np.median(backward[inner].reshape(-1, 2), 0), [-8, -4], atol=0.5)
    np.testing.assert_allclose(np.median(forward[inner].reshape(-1, 2), 0), [8, 4], atol=0.5)
    assert OpticalFlow(200, 100, flow_size=240, preset=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).grey(
        np.zeros((100, 200, 3), np.uint8)).shape == (100, 200)  # never upscaled


def camera_flow(height: int, width: int) -> np.ndarray:
    """The flow of a camera that pans 4 px right and zooms in by 2 % about the frame's centre."""
    grid_y, grid_x = np.mgrid[:height, :width].astype(np.float32)
    centre = np.float32([width / 2, height / 2])
    grid = np.stack([grid_x, grid_y], 2)
    return ((grid - centre) * 0.02 + np.float32([4.0, 0.0])).astype(np.float32)


def test_camera_residual_removes_the_camera_and_keeps_what_moves_on_its_own():
    flow = camera_flow(120, 160)
    np.testing.assert_allclose(camera_residual(flow, step=8, tolerance=1.0), 0.0, atol=1e-3)
    flow[40:60, 50:80] += np.float32([0.0, 6.0])  # a box moving down on its own, 5 % of the frame
    residual = camera_residual(flow, step=8, tolerance=1.0)
    np.testing.assert_allclose(residual[40:60, 50:80], 6.0, atol=1e-3)
    outside = np.ones_like(residual, bool)
    outside[40:60, 50:80] = False
    np.testing.assert_allclose(residual[outside], 0.0, atol=1e-3)


def test_moving_region_is_the_moving_part_at_or_near_the_clicks():
    flows = [camera_flow(120, 160), -camera_flow(120, 160)]  # a frame after and one before
    for flow, sign in zip(flows, (1, -1)):
        flow[40:60, 50:80] += sign * np.float32([0.0, 6.0])  # box A moves on its own
        flow[80:100, 100:130] += sign * np.float32([5.0, 0.0])  # box B too
    flows[1][80:100, 100:130] = -camera_flow(120, 160)[80:100, 100:130]  # ... but B moves with the camera there
    box_a = np.zeros((120, 160), bool)
    box_a[40:60, 50:80] = True
    options = dict(residual=3.0, tolerance=1.0, radius=10.0, step=8, opening=5)
    np.testing.assert_array_equal(moving_region(flows, np.float32([[60.5, 45.2]]), **options), box_a)
    np.testing.assert_array_equal(moving_region(flows, np.float32([[45.0, 50.0]]), **options), box_a)  # 5 px off
    assert moving_region(flows, np.float32([[20.0, 100.0]]), **options) is None  # nothing moves near it
    assert moving_region(flows, np.float32([[110.0, 90.0]]), **options) is None  # B: moving in one flow only
    assert moving_region([], np.float32([[60.0, 45.0]]), **options) is None
    np.testing.assert_array_equal(moving_region(flows[:1], np.float32([[60.0, 45.0], [110.0, 90.0]]), **options),
                                  box_a | np.pad(np.ones((20, 30), bool), ((80, 20), (100, 30))))


def test_sample_reads_the_pixel_a_point_lies_in():
    field_ = np.arange(12).reshape(3, 4)
    xy = np.float32([[2.7, 1.2], [0.0, 0.0], [3.99, 2.99], [-1.0, 5.0]])  # the last is clipped to the frame
    assert sample(field_, xy).tolist() == [field_[1, 2], field_[0, 0], field_[2, 3], field_[2, 0]]


def test_moving_region_opens_away_specks_smaller_than_the_opening():
    flow = camera_flow(120, 160)
    flow[50:53, 70:73] += np.float32([6.0, 0.0])  # a 3 x 3 px speck of flow noise
    options = dict(residual=3.0, tolerance=1.0, radius=4.0, step=8)
    assert moving_region([flow], np.float32([[71.0, 51.0]]), opening=5, **options) is None
    speck = np.zeros((120, 160), bool)
    speck[50:53, 70:73] = True
    np.testing.assert_array_equal(moving_region([flow], np.float32([[71.0, 51.0]]), opening=1, **options), speck)
