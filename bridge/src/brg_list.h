/*
 * brg_list: an intrusive, circular, doubly-linked list. A struct embeds a
 * struct brg_link per list it can sit in; insertion and removal never
 * allocate, and removal works from the link alone.
 */
#ifndef BRG_LIST_H
#define BRG_LIST_H

#include <stddef.h>

struct brg_link {
    struct brg_link *prev;
    struct brg_link *next;
};

#define brg_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Makes head an empty list, or a link "not in any list". */
static inline void brg_list_init(struct brg_link *head)
{
    head->prev = head;
    head->next = head;
}

static inline int brg_list_empty(const struct brg_link *head)
{
    return head->next == head;
}

/* 1 when link sits in a list (it was initialised with brg_list_init). */
static inline int brg_link_linked(const struct brg_link *link)
{
    return link->next != link;
}

static inline void brg_list_insert_between(struct brg_link *link, struct brg_link *prev,
                                           struct brg_link *next)
{
    link->prev = prev;
    link->next = next;
    prev->next = link;
    next->prev = link;
}

static inline void brg_list_push_back(struct brg_link *head, struct brg_link *link)
{
    brg_list_insert_between(link, head->prev, head);
}

static inline void brg_list_push_front(struct brg_link *head, struct brg_link *link)
{
    brg_list_insert_between(link, head, head->next);
}

/* Unlinks link and leaves it "not in any list"; harmless when it is in none. */
static inline void brg_list_remove(struct brg_link *link)
{
    link->prev->next = link->next;
    link->next->prev = link->prev;
    brg_list_init(link);
}

/* Unlinks and returns the first link, or NULL when the list is empty. */
static inline struct brg_link *brg_list_pop_front(struct brg_link *head)
{
    struct brg_link *first = head->next;

    if (first == head) {
        return NULL;
    }
    brg_list_remove(first);
    return first;
}

#endif
