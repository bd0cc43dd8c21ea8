/**
 * Creates a small sample database to try the data tools on: 217 books first published before
 * 1929 (public domain in the United States) and their 64 authors, with a foreign key from books
 * to authors and a nullable `series` column.
 *
 *   node scripts/create-sample-db.ts [FILE]     # default: sample.db; refuses to overwrite
 *
 * Years are of first publication in book form (plays: first printed or first performed).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";

type Form = "novel" | "novella" | "stories" | "play" | "poetry" | "nonfiction";

/** [name, born, died, country, language, books: [title, year, form, series?][]] */
type AuthorEntry = [string, number, number, string, string, [string, number, Form, string?][]];

const AUTHORS: AuthorEntry[] = [
  [
    "Jane Austen",
    1775,
    1817,
    "England",
    "English",
    [
      ["Sense and Sensibility", 1811, "novel"],
      ["Pride and Prejudice", 1813, "novel"],
      ["Mansfield Park", 1814, "novel"],
      ["Emma", 1815, "novel"],
      ["Northanger Abbey", 1817, "novel"],
      ["Persuasion", 1817, "novel"],
    ],
  ],
  [
    "Charles Dickens",
    1812,
    1870,
    "England",
    "English",
    [
      ["The Pickwick Papers", 1837, "novel"],
      ["Oliver Twist", 1838, "novel"],
      ["Nicholas Nickleby", 1839, "novel"],
      ["The Old Curiosity Shop", 1841, "novel"],
      ["A Christmas Carol", 1843, "novella", "Christmas Books"],
      ["The Chimes", 1844, "novella", "Christmas Books"],
      ["David Copperfield", 1850, "novel"],
      ["Bleak House", 1853, "novel"],
      ["Hard Times", 1854, "novel"],
      ["Little Dorrit", 1857, "novel"],
      ["A Tale of Two Cities", 1859, "novel"],
      ["Great Expectations", 1861, "novel"],
      ["Our Mutual Friend", 1865, "novel"],
    ],
  ],
  [
    "Charlotte Brontë",
    1816,
    1855,
    "England",
    "English",
    [
      ["Jane Eyre", 1847, "novel"],
      ["Shirley", 1849, "novel"],
      ["Villette", 1853, "novel"],
    ],
  ],
  ["Emily Brontë", 1818, 1848, "England", "English", [["Wuthering Heights", 1847, "novel"]]],
  [
    "Anne Brontë",
    1820,
    1849,
    "England",
    "English",
    [
      ["Agnes Grey", 1847, "novel"],
      ["The Tenant of Wildfell Hall", 1848, "novel"],
    ],
  ],
  [
    "George Eliot",
    1819,
    1880,
    "England",
    "English",
    [
      ["Adam Bede", 1859, "novel"],
      ["The Mill on the Floss", 1860, "novel"],
      ["Silas Marner", 1861, "novel"],
      ["Middlemarch", 1872, "novel"],
      ["Daniel Deronda", 1876, "novel"],
    ],
  ],
  [
    "Thomas Hardy",
    1840,
    1928,
    "England",
    "English",
    [
      ["Far from the Madding Crowd", 1874, "novel", "Wessex"],
      ["The Return of the Native", 1878, "novel", "Wessex"],
      ["The Mayor of Casterbridge", 1886, "novel", "Wessex"],
      ["Tess of the d'Urbervilles", 1891, "novel", "Wessex"],
      ["Jude the Obscure", 1895, "novel", "Wessex"],
    ],
  ],
  [
    "Mary Shelley",
    1797,
    1851,
    "England",
    "English",
    [
      ["Frankenstein", 1818, "novel"],
      ["The Last Man", 1826, "novel"],
    ],
  ],
  [
    "Elizabeth Gaskell",
    1810,
    1865,
    "England",
    "English",
    [
      ["Mary Barton", 1848, "novel"],
      ["Cranford", 1853, "novel"],
      ["North and South", 1855, "novel"],
    ],
  ],
  [
    "Wilkie Collins",
    1824,
    1889,
    "England",
    "English",
    [
      ["The Woman in White", 1860, "novel"],
      ["Armadale", 1866, "novel"],
      ["The Moonstone", 1868, "novel"],
    ],
  ],
  [
    "Anthony Trollope",
    1815,
    1882,
    "England",
    "English",
    [
      ["The Warden", 1855, "novel", "Chronicles of Barsetshire"],
      ["Barchester Towers", 1857, "novel", "Chronicles of Barsetshire"],
      ["The Way We Live Now", 1875, "novel"],
    ],
  ],
  [
    "Walter Scott",
    1771,
    1832,
    "Scotland",
    "English",
    [
      ["Waverley", 1814, "novel", "Waverley Novels"],
      ["Rob Roy", 1817, "novel", "Waverley Novels"],
      ["Ivanhoe", 1819, "novel", "Waverley Novels"],
    ],
  ],
  [
    "Robert Louis Stevenson",
    1850,
    1894,
    "Scotland",
    "English",
    [
      ["Treasure Island", 1883, "novel"],
      ["A Child's Garden of Verses", 1885, "poetry"],
      ["Strange Case of Dr Jekyll and Mr Hyde", 1886, "novella"],
      ["Kidnapped", 1886, "novel"],
    ],
  ],
  [
    "Arthur Conan Doyle",
    1859,
    1930,
    "Scotland",
    "English",
    [
      ["A Study in Scarlet", 1887, "novel", "Sherlock Holmes"],
      ["The Sign of the Four", 1890, "novel", "Sherlock Holmes"],
      ["The Adventures of Sherlock Holmes", 1892, "stories", "Sherlock Holmes"],
      ["The Hound of the Baskervilles", 1902, "novel", "Sherlock Holmes"],
      ["The Lost World", 1912, "novel", "Professor Challenger"],
    ],
  ],
  [
    "Oscar Wilde",
    1854,
    1900,
    "Ireland",
    "English",
    [
      ["The Happy Prince and Other Tales", 1888, "stories"],
      ["The Picture of Dorian Gray", 1890, "novel"],
      ["The Importance of Being Earnest", 1895, "play"],
    ],
  ],
  [
    "Bram Stoker",
    1847,
    1912,
    "Ireland",
    "English",
    [
      ["Dracula", 1897, "novel"],
      ["The Jewel of Seven Stars", 1903, "novel"],
    ],
  ],
  [
    "Jonathan Swift",
    1667,
    1745,
    "Ireland",
    "English",
    [
      ["A Tale of a Tub", 1704, "nonfiction"],
      ["Gulliver's Travels", 1726, "novel"],
      ["A Modest Proposal", 1729, "nonfiction"],
    ],
  ],
  [
    "James Joyce",
    1882,
    1941,
    "Ireland",
    "English",
    [
      ["Dubliners", 1914, "stories"],
      ["A Portrait of the Artist as a Young Man", 1916, "novel"],
      ["Ulysses", 1922, "novel"],
    ],
  ],
  [
    "Daniel Defoe",
    1660,
    1731,
    "England",
    "English",
    [
      ["Robinson Crusoe", 1719, "novel"],
      ["Moll Flanders", 1722, "novel"],
      ["A Journal of the Plague Year", 1722, "novel"],
    ],
  ],
  [
    "William Shakespeare",
    1564,
    1616,
    "England",
    "English",
    [
      ["Romeo and Juliet", 1597, "play"],
      ["A Midsummer Night's Dream", 1600, "play"],
      ["Hamlet", 1603, "play"],
      ["King Lear", 1608, "play"],
      ["Shakespeare's Sonnets", 1609, "poetry"],
      ["Othello", 1622, "play"],
      ["Macbeth", 1623, "play"],
      ["The Tempest", 1623, "play"],
    ],
  ],
  [
    "Lewis Carroll",
    1832,
    1898,
    "England",
    "English",
    [
      ["Alice's Adventures in Wonderland", 1865, "novel", "Alice"],
      ["Through the Looking-Glass", 1871, "novel", "Alice"],
      ["The Hunting of the Snark", 1876, "poetry"],
    ],
  ],
  [
    "H. G. Wells",
    1866,
    1946,
    "England",
    "English",
    [
      ["The Time Machine", 1895, "novella"],
      ["The Island of Doctor Moreau", 1896, "novel"],
      ["The Invisible Man", 1897, "novel"],
      ["The War of the Worlds", 1898, "novel"],
    ],
  ],
  [
    "Joseph Conrad",
    1857,
    1924,
    "England",
    "English",
    [
      ["Lord Jim", 1900, "novel"],
      ["Heart of Darkness", 1902, "novella"],
      ["Nostromo", 1904, "novel"],
      ["The Secret Agent", 1907, "novel"],
    ],
  ],
  [
    "Rudyard Kipling",
    1865,
    1936,
    "England",
    "English",
    [
      ["The Jungle Book", 1894, "stories", "Jungle Book"],
      ["The Second Jungle Book", 1895, "stories", "Jungle Book"],
      ["Kim", 1901, "novel"],
      ["Just So Stories", 1902, "stories"],
    ],
  ],
  [
    "Virginia Woolf",
    1882,
    1941,
    "England",
    "English",
    [
      ["The Voyage Out", 1915, "novel"],
      ["Jacob's Room", 1922, "novel"],
      ["Mrs Dalloway", 1925, "novel"],
      ["To the Lighthouse", 1927, "novel"],
    ],
  ],
  ["Kenneth Grahame", 1859, 1932, "Scotland", "English", [["The Wind in the Willows", 1908, "novel"]]],
  ["J. M. Barrie", 1860, 1937, "Scotland", "English", [["Peter and Wendy", 1911, "novel", "Peter Pan"]]],
  [
    "Mary Wollstonecraft",
    1759,
    1797,
    "England",
    "English",
    [["A Vindication of the Rights of Woman", 1792, "nonfiction"]],
  ],
  [
    "Charles Darwin",
    1809,
    1882,
    "England",
    "English",
    [
      ["The Voyage of the Beagle", 1839, "nonfiction"],
      ["On the Origin of Species", 1859, "nonfiction"],
      ["The Descent of Man", 1871, "nonfiction"],
    ],
  ],
  [
    "Herman Melville",
    1819,
    1891,
    "United States",
    "English",
    [
      ["Typee", 1846, "novel"],
      ["Moby-Dick", 1851, "novel"],
      ["The Confidence-Man", 1857, "novel"],
      ["Billy Budd", 1924, "novella"],
    ],
  ],
  [
    "Nathaniel Hawthorne",
    1804,
    1864,
    "United States",
    "English",
    [
      ["The Scarlet Letter", 1850, "novel"],
      ["The House of the Seven Gables", 1851, "novel"],
      ["The Marble Faun", 1860, "novel"],
    ],
  ],
  [
    "Mark Twain",
    1835,
    1910,
    "United States",
    "English",
    [
      ["The Innocents Abroad", 1869, "nonfiction"],
      ["The Adventures of Tom Sawyer", 1876, "novel"],
      ["The Prince and the Pauper", 1881, "novel"],
      ["Life on the Mississippi", 1883, "nonfiction"],
      ["Adventures of Huckleberry Finn", 1884, "novel"],
      ["A Connecticut Yankee in King Arthur's Court", 1889, "novel"],
    ],
  ],
  [
    "Edgar Allan Poe",
    1809,
    1849,
    "United States",
    "English",
    [
      ["The Narrative of Arthur Gordon Pym of Nantucket", 1838, "novel"],
      ["Tales of the Grotesque and Arabesque", 1840, "stories"],
      ["The Raven and Other Poems", 1845, "poetry"],
    ],
  ],
  [
    "Louisa May Alcott",
    1832,
    1888,
    "United States",
    "English",
    [
      ["Little Women", 1868, "novel", "Little Women"],
      ["Little Men", 1871, "novel", "Little Women"],
      ["Jo's Boys", 1886, "novel", "Little Women"],
    ],
  ],
  [
    "Henry James",
    1843,
    1916,
    "United States",
    "English",
    [
      ["Daisy Miller", 1878, "novella"],
      ["Washington Square", 1880, "novel"],
      ["The Portrait of a Lady", 1881, "novel"],
      ["The Turn of the Screw", 1898, "novella"],
      ["The Ambassadors", 1903, "novel"],
    ],
  ],
  [
    "Edith Wharton",
    1862,
    1937,
    "United States",
    "English",
    [
      ["The House of Mirth", 1905, "novel"],
      ["Ethan Frome", 1911, "novella"],
      ["The Age of Innocence", 1920, "novel"],
    ],
  ],
  [
    "Walt Whitman",
    1819,
    1892,
    "United States",
    "English",
    [
      ["Leaves of Grass", 1855, "poetry"],
      ["Drum-Taps", 1865, "poetry"],
    ],
  ],
  ["Emily Dickinson", 1830, 1886, "United States", "English", [["Poems", 1890, "poetry"]]],
  [
    "Henry David Thoreau",
    1817,
    1862,
    "United States",
    "English",
    [
      ["Civil Disobedience", 1849, "nonfiction"],
      ["Walden", 1854, "nonfiction"],
    ],
  ],
  [
    "Ralph Waldo Emerson",
    1803,
    1882,
    "United States",
    "English",
    [
      ["Nature", 1836, "nonfiction"],
      ["Essays: First Series", 1841, "nonfiction"],
    ],
  ],
  [
    "Jack London",
    1876,
    1916,
    "United States",
    "English",
    [
      ["The Call of the Wild", 1903, "novel"],
      ["The Sea-Wolf", 1904, "novel"],
      ["White Fang", 1906, "novel"],
      ["Martin Eden", 1909, "novel"],
    ],
  ],
  [
    "Stephen Crane",
    1871,
    1900,
    "United States",
    "English",
    [
      ["Maggie: A Girl of the Streets", 1893, "novella"],
      ["The Red Badge of Courage", 1895, "novel"],
    ],
  ],
  ["Kate Chopin", 1850, 1904, "United States", "English", [["The Awakening", 1899, "novel"]]],
  [
    "Willa Cather",
    1873,
    1947,
    "United States",
    "English",
    [
      ["O Pioneers!", 1913, "novel", "Prairie Trilogy"],
      ["The Song of the Lark", 1915, "novel", "Prairie Trilogy"],
      ["My Ántonia", 1918, "novel", "Prairie Trilogy"],
    ],
  ],
  [
    "F. Scott Fitzgerald",
    1896,
    1940,
    "United States",
    "English",
    [
      ["This Side of Paradise", 1920, "novel"],
      ["The Beautiful and Damned", 1922, "novel"],
      ["The Great Gatsby", 1925, "novel"],
    ],
  ],
  ["Harriet Beecher Stowe", 1811, 1896, "United States", "English", [["Uncle Tom's Cabin", 1852, "novel"]]],
  [
    "Frances Hodgson Burnett",
    1849,
    1924,
    "England",
    "English",
    [
      ["Little Lord Fauntleroy", 1886, "novel"],
      ["A Little Princess", 1905, "novel"],
      ["The Secret Garden", 1911, "novel"],
    ],
  ],
  [
    "L. M. Montgomery",
    1874,
    1942,
    "Canada",
    "English",
    [
      ["Anne of Green Gables", 1908, "novel", "Anne of Green Gables"],
      ["Anne of Avonlea", 1909, "novel", "Anne of Green Gables"],
    ],
  ],
  [
    "Leo Tolstoy",
    1828,
    1910,
    "Russia",
    "Russian",
    [
      ["War and Peace", 1869, "novel"],
      ["Anna Karenina", 1878, "novel"],
      ["The Death of Ivan Ilyich", 1886, "novella"],
      ["Resurrection", 1899, "novel"],
    ],
  ],
  [
    "Fyodor Dostoevsky",
    1821,
    1881,
    "Russia",
    "Russian",
    [
      ["Poor Folk", 1846, "novel"],
      ["Notes from Underground", 1864, "novella"],
      ["Crime and Punishment", 1866, "novel"],
      ["The Idiot", 1869, "novel"],
      ["Demons", 1872, "novel"],
      ["The Brothers Karamazov", 1880, "novel"],
    ],
  ],
  [
    "Ivan Turgenev",
    1818,
    1883,
    "Russia",
    "Russian",
    [
      ["A Sportsman's Sketches", 1852, "stories"],
      ["On the Eve", 1860, "novel"],
      ["Fathers and Sons", 1862, "novel"],
    ],
  ],
  [
    "Nikolai Gogol",
    1809,
    1852,
    "Russia",
    "Russian",
    [
      ["The Government Inspector", 1836, "play"],
      ["Dead Souls", 1842, "novel"],
      ["The Overcoat", 1842, "stories"],
    ],
  ],
  [
    "Anton Chekhov",
    1860,
    1904,
    "Russia",
    "Russian",
    [
      ["The Seagull", 1896, "play"],
      ["Uncle Vanya", 1897, "play"],
      ["Three Sisters", 1901, "play"],
      ["The Cherry Orchard", 1904, "play"],
    ],
  ],
  [
    "Victor Hugo",
    1802,
    1885,
    "France",
    "French",
    [
      ["The Hunchback of Notre-Dame", 1831, "novel"],
      ["Les Misérables", 1862, "novel"],
      ["Toilers of the Sea", 1866, "novel"],
      ["The Man Who Laughs", 1869, "novel"],
    ],
  ],
  [
    "Alexandre Dumas",
    1802,
    1870,
    "France",
    "French",
    [
      ["The Three Musketeers", 1844, "novel", "d'Artagnan Romances"],
      ["Twenty Years After", 1845, "novel", "d'Artagnan Romances"],
      ["The Count of Monte Cristo", 1846, "novel"],
      ["The Black Tulip", 1850, "novel"],
    ],
  ],
  [
    "Gustave Flaubert",
    1821,
    1880,
    "France",
    "French",
    [
      ["Madame Bovary", 1857, "novel"],
      ["Salammbô", 1862, "novel"],
      ["Sentimental Education", 1869, "novel"],
    ],
  ],
  [
    "Jules Verne",
    1828,
    1905,
    "France",
    "French",
    [
      ["Five Weeks in a Balloon", 1863, "novel", "Voyages extraordinaires"],
      ["Journey to the Center of the Earth", 1864, "novel", "Voyages extraordinaires"],
      ["From the Earth to the Moon", 1865, "novel", "Voyages extraordinaires"],
      ["Twenty Thousand Leagues Under the Seas", 1870, "novel", "Voyages extraordinaires"],
      ["Around the World in Eighty Days", 1872, "novel", "Voyages extraordinaires"],
      ["The Mysterious Island", 1875, "novel", "Voyages extraordinaires"],
    ],
  ],
  [
    "Honoré de Balzac",
    1799,
    1850,
    "France",
    "French",
    [
      ["Eugénie Grandet", 1833, "novel", "La Comédie humaine"],
      ["Father Goriot", 1835, "novel", "La Comédie humaine"],
      ["Cousin Bette", 1846, "novel", "La Comédie humaine"],
    ],
  ],
  [
    "Émile Zola",
    1840,
    1902,
    "France",
    "French",
    [
      ["Thérèse Raquin", 1867, "novel"],
      ["L'Assommoir", 1877, "novel", "Les Rougon-Macquart"],
      ["Nana", 1880, "novel", "Les Rougon-Macquart"],
      ["Germinal", 1885, "novel", "Les Rougon-Macquart"],
    ],
  ],
  [
    "Stendhal",
    1783,
    1842,
    "France",
    "French",
    [
      ["The Red and the Black", 1830, "novel"],
      ["The Charterhouse of Parma", 1839, "novel"],
    ],
  ],
  [
    "Miguel de Cervantes",
    1547,
    1616,
    "Spain",
    "Spanish",
    [
      ["Don Quixote", 1605, "novel"],
      ["Exemplary Novels", 1613, "stories"],
    ],
  ],
  [
    "Johann Wolfgang von Goethe",
    1749,
    1832,
    "Germany",
    "German",
    [
      ["The Sorrows of Young Werther", 1774, "novel"],
      ["Faust, Part One", 1808, "play"],
      ["Elective Affinities", 1809, "novel"],
    ],
  ],
  [
    "Franz Kafka",
    1883,
    1924,
    "Austria-Hungary",
    "German",
    [
      ["The Metamorphosis", 1915, "novella"],
      ["The Trial", 1925, "novel"],
      ["The Castle", 1926, "novel"],
    ],
  ],
  [
    "Henrik Ibsen",
    1828,
    1906,
    "Norway",
    "Norwegian",
    [
      ["Peer Gynt", 1867, "play"],
      ["A Doll's House", 1879, "play"],
      ["Ghosts", 1881, "play"],
      ["An Enemy of the People", 1882, "play"],
      ["Hedda Gabler", 1890, "play"],
    ],
  ],
];

const SCHEMA = `
CREATE TABLE authors (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  born INTEGER,
  died INTEGER,
  country TEXT
);
CREATE TABLE books (
  id INTEGER PRIMARY KEY,
  title TEXT NOT NULL,
  author_id INTEGER NOT NULL REFERENCES authors(id),
  published INTEGER,
  form TEXT,
  language TEXT,
  series TEXT
);
CREATE INDEX books_author ON books(author_id);
`;

/** Writes the sample tables into a new database file; returns the row counts. */
export function createSampleDatabase(path: string): { authors: number; books: number } {
  if (existsSync(path)) {
    throw new Error(`${path} already exists; remove it or choose another file name.`);
  }
  const db = new Database(path);
  try {
    db.exec(SCHEMA);
    const insertAuthor = db.prepare("INSERT INTO authors (name, born, died, country) VALUES (?, ?, ?, ?)");
    const insertBook = db.prepare(
      "INSERT INTO books (title, author_id, published, form, language, series) VALUES (?, ?, ?, ?, ?, ?)",
    );
    let books = 0;
    db.transaction(() => {
      for (const [name, born, died, country, language, works] of AUTHORS) {
        const authorId = insertAuthor.run(name, born, died, country).lastInsertRowid;
        for (const [title, year, form, series] of works) {
          insertBook.run(title, authorId, year, form, language, series ?? null);
          books++;
        }
      }
    })();
    return { authors: AUTHORS.length, books };
  } finally {
    db.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const path = resolve(process.argv[2] ?? "sample.db");
  try {
    const counts = createSampleDatabase(path);
    process.stdout.write(`Created ${path}: ${counts.books} books by ${counts.authors} authors.\n`);
  } catch (error) {
    process.stderr.write(`Error: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
