"""Numba kernels for the Lab trainers: a dense feed-forward network in one flat parameter vector.

Layer sizes ``sizes = [d, h1, ..., K]`` describe every model we train:

- ``[d, 1]``: binary logistic regression (sigmoid output, log loss);
- ``[d, K]`` with K > 2: multinomial logistic regression (softmax output, cross-entropy);
- ``[d, h1, K]`` or ``[d, h1, h2, K]``: an MLP with tanh or relu hidden units.

Layer l's weights are stored row-major (fan_in x fan_out) at ``w_offsets[l]`` in ``params``,
its biases at ``b_offsets[l]``. Training is mini-batch gradient descent (plain SGD or Adam)
on shuffled batches, with L2 on weights (not biases). All randomness (initial weights and the
per-epoch shuffles) comes from numba's generator seeded inside the kernel, and every loop runs
in a fixed order, so a seed gives bit-identical weights.
"""

from __future__ import annotations

import numpy as np
from numba import njit

ACT_TANH = 0
ACT_RELU = 1
OPT_SGD = 0
OPT_ADAM = 1


@njit(cache=True)
def layer_offsets_nb(sizes):
    """(w_offsets, b_offsets, unit_offsets, n_params, n_units) for layer sizes."""
    n_layers = sizes.shape[0] - 1
    w_off = np.empty(n_layers, dtype=np.int64)
    b_off = np.empty(n_layers, dtype=np.int64)
    u_off = np.empty(sizes.shape[0], dtype=np.int64)
    pos = 0
    for layer in range(n_layers):
        w_off[layer] = pos
        pos += sizes[layer] * sizes[layer + 1]
        b_off[layer] = pos
        pos += sizes[layer + 1]
    units = 0
    for layer in range(sizes.shape[0]):
        u_off[layer] = units
        units += sizes[layer]
    return w_off, b_off, u_off, pos, units


@njit(cache=True)
def init_params_nb(sizes, activation, seed):
    """Initial parameters: zeros for a model without hidden layers (convex, so no symmetry to
    break); Glorot-uniform (tanh) or He-uniform (relu) weights and zero biases otherwise."""
    np.random.seed(seed)
    w_off, b_off, u_off, n_params, n_units = layer_offsets_nb(sizes)
    params = np.zeros(n_params)
    n_layers = sizes.shape[0] - 1
    if n_layers == 1:
        return params
    for layer in range(n_layers):
        fan_in = sizes[layer]
        fan_out = sizes[layer + 1]
        if activation == ACT_RELU and layer < n_layers - 1:
            limit = np.sqrt(6.0 / fan_in)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
        for k in range(fan_in * fan_out):
            params[w_off[layer] + k] = np.random.uniform(-limit, limit)
    return params


@njit(cache=True)
def _forward(X, rows, params, sizes, activation, w_off, b_off, u_off, acts):
    """Fill ``acts[r, :]`` with every layer's outputs for the batch rows; returns batch size."""
    n_layers = sizes.shape[0] - 1
    bs = rows.shape[0]
    d = sizes[0]
    for r in range(bs):
        src = rows[r]
        for i in range(d):
            acts[r, i] = X[src, i]
    for layer in range(n_layers):
        fan_in = sizes[layer]
        fan_out = sizes[layer + 1]
        in_off = u_off[layer]
        out_off = u_off[layer + 1]
        wo = w_off[layer]
        bo = b_off[layer]
        last = layer == n_layers - 1
        for r in range(bs):
            if fan_out == 1:  # a plain dot product, kept apart so it vectorises
                z = params[bo]
                for i in range(fan_in):
                    z += acts[r, in_off + i] * params[wo + i]
                acts[r, out_off] = z
            else:
                for j in range(fan_out):
                    acts[r, out_off + j] = params[bo + j]
                for i in range(fan_in):
                    a = acts[r, in_off + i]
                    base = wo + i * fan_out
                    for j in range(fan_out):
                        acts[r, out_off + j] += a * params[base + j]
            if not last:
                for j in range(fan_out):
                    z = acts[r, out_off + j]
                    if activation == ACT_TANH:
                        acts[r, out_off + j] = np.tanh(z)
                    else:
                        acts[r, out_off + j] = z if z > 0.0 else 0.0
            elif fan_out == 1:
                z = acts[r, out_off]
                if z >= 0.0:
                    acts[r, out_off] = 1.0 / (1.0 + np.exp(-z))
                else:
                    ez = np.exp(z)
                    acts[r, out_off] = ez / (1.0 + ez)
            else:
                zmax = acts[r, out_off]
                for j in range(1, fan_out):
                    if acts[r, out_off + j] > zmax:
                        zmax = acts[r, out_off + j]
                total = 0.0
                for j in range(fan_out):
                    e = np.exp(acts[r, out_off + j] - zmax)
                    acts[r, out_off + j] = e
                    total += e
                for j in range(fan_out):
                    acts[r, out_off + j] /= total
    return bs


@njit(cache=True)
def predict_proba_nb(X, params, sizes, activation):
    """Output-layer probabilities (n x K; n x 1 = P(positive) for binary logistic)."""
    n = X.shape[0]
    w_off, b_off, u_off, n_params, n_units = layer_offsets_nb(sizes)
    k = sizes[sizes.shape[0] - 1]
    out = np.empty((n, k))
    chunk = 1024
    acts = np.empty((chunk, n_units))
    rows = np.empty(chunk, dtype=np.int64)
    start = 0
    while start < n:
        stop = min(start + chunk, n)
        bs = stop - start
        for r in range(bs):
            rows[r] = start + r
        _forward(X, rows[:bs], params, sizes, activation, w_off, b_off, u_off, acts)
        o = u_off[sizes.shape[0] - 1]
        for r in range(bs):
            for j in range(k):
                out[start + r, j] = acts[r, o + j]
        start = stop
    return out


@njit(cache=True)
def fit_nb(X, y, params, sizes, activation, learning_rate, epochs, batch_size, l2, optimizer,
           seed):
    """Mini-batch training of ``params`` in place; returns the mean training loss per epoch.

    ``y`` holds class indices 0..K-1 (0/1 for the binary sigmoid model). Loss per row is the
    log loss -log p(y); the gradient is averaged over the batch, plus ``l2 x w`` for weights.
    Adam uses beta1 = 0.9, beta2 = 0.999, eps = 1e-8 with bias correction.
    """
    np.random.seed(seed + 1)  # +1: independent of the init stream that used `seed`
    n = X.shape[0]
    n_layers = sizes.shape[0] - 1
    w_off, b_off, u_off, n_params, n_units = layer_offsets_nb(sizes)
    k_out = sizes[n_layers]
    bs_max = min(batch_size, n)
    acts = np.empty((bs_max, n_units))
    delta = np.empty((bs_max, n_units))
    grad = np.empty(n_params)
    m1 = np.zeros(n_params)
    m2 = np.zeros(n_params)
    beta1 = 0.9
    beta2 = 0.999
    eps = 1e-8
    step = 0
    losses = np.empty(epochs)
    out_off = u_off[n_layers]
    for epoch in range(epochs):
        order = np.random.permutation(n)
        loss_sum = 0.0
        start = 0
        while start < n:
            stop = min(start + bs_max, n)
            rows = order[start:stop]
            bs = _forward(X, rows, params, sizes, activation, w_off, b_off, u_off, acts)
            # output delta of log loss w.r.t. pre-activation: p - onehot(y)
            for r in range(bs):
                label = y[rows[r]]
                if k_out == 1:
                    p = acts[r, out_off]
                    delta[r, out_off] = p - label
                    pc = p if label == 1 else 1.0 - p
                else:
                    for j in range(k_out):
                        delta[r, out_off + j] = acts[r, out_off + j]
                    delta[r, out_off + label] -= 1.0
                    pc = acts[r, out_off + label]
                loss_sum -= np.log(max(pc, 1e-15))
            for i in range(n_params):
                grad[i] = 0.0
            inv_bs = 1.0 / bs
            for layer in range(n_layers - 1, -1, -1):
                fan_in = sizes[layer]
                fan_out = sizes[layer + 1]
                in_off = u_off[layer]
                o_off = u_off[layer + 1]
                wo = w_off[layer]
                bo = b_off[layer]
                for r in range(bs):
                    if fan_out == 1:
                        dr = delta[r, o_off] * inv_bs
                        grad[bo] += dr
                        for i in range(fan_in):
                            grad[wo + i] += acts[r, in_off + i] * dr
                        continue
                    for j in range(fan_out):
                        grad[bo + j] += delta[r, o_off + j] * inv_bs
                    for i in range(fan_in):
                        a = acts[r, in_off + i] * inv_bs
                        if a == 0.0:
                            continue
                        base = wo + i * fan_out
                        for j in range(fan_out):
                            grad[base + j] += a * delta[r, o_off + j]
                if layer > 0:
                    for r in range(bs):
                        for i in range(fan_in):
                            base = wo + i * fan_out
                            s = 0.0
                            for j in range(fan_out):
                                s += delta[r, o_off + j] * params[base + j]
                            a = acts[r, in_off + i]
                            if activation == ACT_TANH:
                                s *= 1.0 - a * a
                            elif a <= 0.0:
                                s = 0.0
                            delta[r, in_off + i] = s
                if l2 > 0.0:
                    for kk in range(fan_in * fan_out):
                        grad[wo + kk] += l2 * params[wo + kk]
            step += 1
            if optimizer == OPT_ADAM:
                c1 = 1.0 - beta1 ** step
                c2 = 1.0 - beta2 ** step
                for i in range(n_params):
                    g = grad[i]
                    m1[i] = beta1 * m1[i] + (1.0 - beta1) * g
                    m2[i] = beta2 * m2[i] + (1.0 - beta2) * g * g
                    params[i] -= learning_rate * (m1[i] / c1) / (np.sqrt(m2[i] / c2) + eps)
            else:
                for i in range(n_params):
                    params[i] -= learning_rate * grad[i]
            start = stop
        losses[epoch] = loss_sum / n
    return losses


@njit(cache=True)
def isotonic_fit_nb(x, y, w):
    """Pool-adjacent-violators: non-decreasing fit of y on sorted x with weights w.

    Returns (block x means, block fitted values) for piecewise-linear interpolation.
    """
    n = x.shape[0]
    val = np.empty(n)
    wt = np.empty(n)
    xs = np.empty(n)
    size = 0
    for i in range(n):
        val[size] = y[i]
        wt[size] = w[i]
        xs[size] = x[i] * w[i]
        size += 1
        while size > 1 and val[size - 2] >= val[size - 1]:
            tw = wt[size - 2] + wt[size - 1]
            val[size - 2] = (val[size - 2] * wt[size - 2] + val[size - 1] * wt[size - 1]) / tw
            xs[size - 2] = xs[size - 2] + xs[size - 1]
            wt[size - 2] = tw
            size -= 1
    bx = np.empty(size)
    by = np.empty(size)
    for i in range(size):
        bx[i] = xs[i] / wt[i]
        by[i] = val[i]
    return bx, by
