/*
 * Whether a loaded object defines a symbol, read from the objects' own
 * hash tables. dlsym(3) would answer too, but a name it does not find
 * leaves an error that the program's next dlerror(3) returns, and builds
 * that message with malloc: the shim asks before main() whether the
 * program is Python or Node.js, and most programs are neither.
 */

#include <elf.h>
#include <link.h>
#include <string.h>

#include "runtime.h"

struct elfsym_ask {
	const char	*name;
	uint32_t	 gnu;	/* the name's GNU hash */
	uint32_t	 sysv;	/* its SysV hash */
	int		 found;
};

/*
 * The address a dynamic entry names, or NULL when it is in none of the
 * object's loaded segments: the loader adds the load address to most
 * entries in place, but not where the section is read-only (the vDSO's),
 * so both are tried, and nothing outside the object is ever read.
 */
static const void *
elfsym_ptr(const struct dl_phdr_info *info, ElfW(Addr) p)
{
	const ElfW(Phdr)	*ph;
	ElfW(Addr)		 lo;
	int			 i, k;

	for (k = 0; k < 2; k++, p += info->dlpi_addr) {
		for (i = 0; i < info->dlpi_phnum; i++) {
			ph = &info->dlpi_phdr[i];
			lo = info->dlpi_addr + ph->p_vaddr;
			if (ph->p_type == PT_LOAD && p >= lo &&
			    p - lo < ph->p_memsz)
				return ((const void *)p);
		}
	}
	return (NULL);
}

static int
elfsym_defined(const ElfW(Sym) *sym, const char *str, const char *name)
{
	return (sym->st_shndx != SHN_UNDEF &&
	    strcmp(str + sym->st_name, name) == 0);
}

/* DT_GNU_HASH: a Bloom filter, then one bucket's chain of hashes. */
static int
elfsym_gnu(const uint32_t *h, const ElfW(Sym) *sym, const char *str,
    const struct elfsym_ask *a)
{
	const unsigned	 bits = sizeof(ElfW(Addr)) * 8;
	uint32_t	 nbuckets = h[0], symoff = h[1], nbloom = h[2];
	uint32_t	 shift = h[3], i, c;
	const ElfW(Addr) *bloom = (const ElfW(Addr) *)(h + 4);
	const uint32_t	*buckets, *chain;
	ElfW(Addr)	 mask;

	if (nbuckets == 0 || nbloom == 0)
		return (0);
	mask = (ElfW(Addr))1 << (a->gnu % bits) |
	    (ElfW(Addr))1 << ((a->gnu >> shift) % bits);
	if ((bloom[(a->gnu / bits) % nbloom] & mask) != mask)
		return (0);
	buckets = (const uint32_t *)(bloom + nbloom);
	chain = buckets + nbuckets;
	if ((i = buckets[a->gnu % nbuckets]) < symoff || i == 0)
		return (0);
	do {
		c = chain[i - symoff];
		if ((c | 1) == (a->gnu | 1) &&
		    elfsym_defined(&sym[i], str, a->name))
			return (1);
		i++;
	} while (!(c & 1));
	return (0);
}

/* DT_HASH: buckets of symbol indexes, chained. */
static int
elfsym_sysv(const uint32_t *h, const ElfW(Sym) *sym, const char *str,
    const struct elfsym_ask *a)
{
	uint32_t	 nbucket = h[0], nchain = h[1], i, n;
	const uint32_t	*bucket = h + 2, *chain = bucket + nbucket;

	if (nbucket == 0)
		return (0);
	/* A chain longer than the table would be a loop. */
	for (i = bucket[a->sysv % nbucket], n = 0; i != STN_UNDEF &&
	    i < nchain && n < nchain; i = chain[i], n++)
		if (elfsym_defined(&sym[i], str, a->name))
			return (1);
	return (0);
}

static int
elfsym_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct elfsym_ask	*a = arg;
	const ElfW(Dyn)		*d = NULL;
	const uint32_t		*gnu = NULL, *sysv = NULL;
	const ElfW(Sym)		*sym = NULL;
	const char		*str = NULL;
	int			 i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			d = (const ElfW(Dyn) *)(info->dlpi_addr +
			    info->dlpi_phdr[i].p_vaddr);
	for (; d != NULL && d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_GNU_HASH)
			gnu = elfsym_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_HASH)
			sysv = elfsym_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_SYMTAB)
			sym = elfsym_ptr(info, d->d_un.d_ptr);
		else if (d->d_tag == DT_STRTAB)
			str = elfsym_ptr(info, d->d_un.d_ptr);
	}
	if (sym == NULL || str == NULL)
		return (0);
	if (gnu != NULL)
		a->found = elfsym_gnu(gnu, sym, str, a);
	else if (sysv != NULL)
		a->found = elfsym_sysv(sysv, sym, str, a);
	return (a->found);
}

int
elfsym_loaded(const char *name)
{
	struct elfsym_ask	 a = { name, 5381, 0, 0 };
	const unsigned char	*p;
	uint32_t		 g;

	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		a.gnu = a.gnu * 33 + *p;
		a.sysv = (a.sysv << 4) + *p;
		if ((g = a.sysv & 0xf0000000) != 0)
			a.sysv ^= g >> 24;
		a.sysv &= ~g;
	}
	dl_iterate_phdr(elfsym_object, &a);
	return (a.found);
}
