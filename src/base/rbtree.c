/* SPDX-License-Identifier: MIT */
/*
 * rbtree.c - red-black rebalancing (CLRS, chapter 13) with augmentation.
 *
 * Summaries stay exact by three rules:
 *  - after a node is linked, its ancestors are recomputed up to the first
 *    whose summary does not change; after one is unlinked, every node from
 *    the change up to the root (rb_propagate); both before any rotation;
 *  - a rotation does not change the set of nodes below the rotated pair, so
 *    it recomputes only the pair, lower node first;
 *  - nothing above a rotation needs recomputing.
 */
#include "base/rbtree.h"

static void augment_one(struct rb_root *t, struct rb_node *n)
{
	if (t->augment && n)
		t->augment(n);
}

void rb_propagate(struct rb_root *t, struct rb_node *n)
{
	if (!t->augment)
		return;
	for (; n; n = n->parent)
		t->augment(n);
}

/*
 * After a change below @n on one path only (a leaf linked under it): @n is
 * recomputed, then its ancestors until one keeps its summary, since nothing
 * above that one has an input that moved. An erase may move a node to
 * another place in the tree, two paths at once: it propagates to the root.
 */
static void propagate_path(struct rb_root *t, struct rb_node *n)
{
	if (!t->augment)
		return;
	t->augment(n);
	for (n = n->parent; n && t->augment(n); n = n->parent)
		;
}

static void replace_child(struct rb_root *t, struct rb_node *parent, struct rb_node *old,
			  struct rb_node *new)
{
	if (!parent)
		t->root = new;
	else if (parent->left == old)
		parent->left = new;
	else
		parent->right = new;
}

/* x's right child y takes x's place; x becomes y's left child. */
static void rotate_left(struct rb_root *t, struct rb_node *x)
{
	struct rb_node *y = x->right;

	x->right = y->left;
	if (y->left)
		y->left->parent = x;
	y->parent = x->parent;
	replace_child(t, x->parent, x, y);
	y->left = x;
	x->parent = y;
	augment_one(t, x);
	augment_one(t, y);
}

static void rotate_right(struct rb_root *t, struct rb_node *x)
{
	struct rb_node *y = x->left;

	x->left = y->right;
	if (y->right)
		y->right->parent = x;
	y->parent = x->parent;
	replace_child(t, x->parent, x, y);
	y->right = x;
	x->parent = y;
	augment_one(t, x);
	augment_one(t, y);
}

static bool is_red(const struct rb_node *n)
{
	return n && n->red;
}

void rb_insert(struct rb_root *t, struct rb_node *n, struct rb_node *parent, struct rb_node **link)
{
	n->parent = parent;
	n->left = n->right = NULL;
	n->red = true;
	*link = n;
	propagate_path(t, n);

	while (is_red(n->parent)) {
		struct rb_node *p = n->parent, *g = p->parent, *u;

		/* A red parent is never the root, so the grandparent exists. */
		if (p == g->left) {
			u = g->right;
			if (is_red(u)) {
				p->red = u->red = false;
				g->red = true;
				n = g;
				continue;
			}
			if (n == p->right) {
				rotate_left(t, p);
				n = p;
				p = n->parent;
			}
			p->red = false;
			g->red = true;
			rotate_right(t, g);
		} else {
			u = g->left;
			if (is_red(u)) {
				p->red = u->red = false;
				g->red = true;
				n = g;
				continue;
			}
			if (n == p->left) {
				rotate_right(t, p);
				n = p;
				p = n->parent;
			}
			p->red = false;
			g->red = true;
			rotate_left(t, g);
		}
	}
	t->root->red = false;
}

static void erase_fixup(struct rb_root *t, struct rb_node *x, struct rb_node *parent)
{
	while (x != t->root && !is_red(x)) {
		struct rb_node *w;

		if (x == parent->left) {
			w = parent->right;
			if (is_red(w)) {
				w->red = false;
				parent->red = true;
				rotate_left(t, parent);
				w = parent->right;
			}
			if (!is_red(w->left) && !is_red(w->right)) {
				w->red = true;
				x = parent;
				parent = x->parent;
				continue;
			}
			if (!is_red(w->right)) {
				w->left->red = false;
				w->red = true;
				rotate_right(t, w);
				w = parent->right;
			}
			w->red = parent->red;
			parent->red = false;
			if (w->right)
				w->right->red = false;
			rotate_left(t, parent);
			x = t->root;
			break;
		} else {
			w = parent->left;
			if (is_red(w)) {
				w->red = false;
				parent->red = true;
				rotate_right(t, parent);
				w = parent->left;
			}
			if (!is_red(w->left) && !is_red(w->right)) {
				w->red = true;
				x = parent;
				parent = x->parent;
				continue;
			}
			if (!is_red(w->left)) {
				w->right->red = false;
				w->red = true;
				rotate_left(t, w);
				w = parent->left;
			}
			w->red = parent->red;
			parent->red = false;
			if (w->left)
				w->left->red = false;
			rotate_right(t, parent);
			x = t->root;
			break;
		}
	}
	if (x)
		x->red = false;
}

void rb_erase(struct rb_root *t, struct rb_node *z)
{
	struct rb_node *x, *xparent, *lowest;
	bool removed_red;

	if (!z->left || !z->right) {
		/* z has at most one child, which takes its place. */
		x = z->left ? z->left : z->right;
		xparent = z->parent;
		removed_red = z->red;
		replace_child(t, z->parent, z, x);
		if (x)
			x->parent = xparent;
		lowest = xparent;
	} else {
		/* y, z's successor, has no left child; it takes z's place and colour. */
		struct rb_node *y = z->right;

		while (y->left)
			y = y->left;
		removed_red = y->red;
		x = y->right;
		if (y->parent == z) {
			xparent = y;
		} else {
			xparent = y->parent;
			xparent->left = x;
			if (x)
				x->parent = xparent;
			y->right = z->right;
			z->right->parent = y;
		}
		y->left = z->left;
		z->left->parent = y;
		y->parent = z->parent;
		replace_child(t, z->parent, z, y);
		y->red = z->red;
		lowest = xparent;
	}
	rb_propagate(t, lowest);
	if (!removed_red)
		erase_fixup(t, x, xparent);
	z->parent = z->left = z->right = NULL;
}

struct rb_node *rb_first(const struct rb_root *t)
{
	struct rb_node *n = t->root;

	if (!n)
		return NULL;
	while (n->left)
		n = n->left;
	return n;
}

struct rb_node *rb_last(const struct rb_root *t)
{
	struct rb_node *n = t->root;

	if (!n)
		return NULL;
	while (n->right)
		n = n->right;
	return n;
}

struct rb_node *rb_next(const struct rb_node *n)
{
	const struct rb_node *p;

	if (n->right) {
		n = n->right;
		while (n->left)
			n = n->left;
		return (struct rb_node *)n;
	}
	while ((p = n->parent) && n == p->right)
		n = p;
	return (struct rb_node *)p;
}

struct rb_node *rb_prev(const struct rb_node *n)
{
	const struct rb_node *p;

	if (n->left) {
		n = n->left;
		while (n->right)
			n = n->right;
		return (struct rb_node *)n;
	}
	while ((p = n->parent) && n == p->left)
		n = p;
	return (struct rb_node *)p;
}
