/* SPDX-License-Identifier: MIT */
/*
 * list.h - intrusive circular doubly linked list.
 *
 * The node lives inside the object, so linking never allocates: what the
 * allocators need, since they run where allocating is not allowed.
 */
#ifndef IOVM_BASE_LIST_H
#define IOVM_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/compiler.h"

struct list_node {
	struct list_node *next, *prev;
};

#define LIST_HEAD_INIT(name) { &(name), &(name) }

static inline void list_init(struct list_node *head)
{
	head->next = head->prev = head;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

static inline void list__insert(struct list_node *n, struct list_node *prev, struct list_node *next)
{
	next->prev = n;
	n->next = next;
	n->prev = prev;
	prev->next = n;
}

static inline void list_add(struct list_node *head, struct list_node *n)
{
	list__insert(n, head, head->next);
}

static inline void list_add_tail(struct list_node *head, struct list_node *n)
{
	list__insert(n, head->prev, head);
}

static inline void list_del(struct list_node *n)
{
	n->next->prev = n->prev;
	n->prev->next = n->next;
	n->next = n->prev = n;
}

/* A node that list_del() left, or list_init() made, points at itself. */
static inline bool list_linked(const struct list_node *n)
{
	return n->next != n;
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first(head, type, member) \
	(list_empty(head) ? NULL : list_entry((head)->next, type, member))

#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

#define list_for_each_safe(pos, tmp, head) \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

#endif /* IOVM_BASE_LIST_H */
