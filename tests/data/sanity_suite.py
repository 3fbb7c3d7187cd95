"""The public sanity suite: requests written by hand for this test, never trained on.

Three bands (trivial, ordinary, demanding) across chat, code, maths, writing, analysis and data
formatting. `MATCHED` pairs the hard case for a prompt-length router: short demanding requests
against long trivial ones.
"""

from __future__ import annotations

TRIVIAL = [
    ("chat", "hey!"), ("chat", "Hi, how are you?"), ("chat", "thanks, that worked"), ("chat", "Good night!"),
    ("chat", "lol ok"), ("chat", "Can you say that again?"), ("chat", "What's your name?"), ("chat", "nice one, cheers"),
    ("chat", "yes please"), ("chat", "Happy new year!"), ("chat", "Which is bigger, a cat or an elephant?"),
    ("chat", "What colour is the sky on a clear day?"), ("chat", "How many days are in a week?"),
    ("writing", "Fix the typo: 'teh cat sat on teh mat'"), ("writing", "Give me an antonym of 'cold'."),
    ("writing", "Spell 'accommodate' for me."), ("writing", "Translate 'thank you' into Japanese."),
    ("writing", "What's the French word for cheese?"), ("writing", "Capitalise: london bridge"),
    ("maths", "What is 7 times 8?"), ("maths", "What's 15% of 200?"), ("maths", "Is 9 an odd number?"),
    ("maths", "Round 3.14159 to two decimals."), ("maths", "How many minutes are in 3 hours?"),
    ("code", "What does HTML stand for?"), ("code", "How do I print hello world in Python?"),
    ("code", "Which key is used to save a file in most editors, Ctrl plus what?"),
    ("data", "Convert 2024-03-05 to 5 March 2024 format."), ("data", "What is 100 Fahrenheit in Celsius?"),
    ("data", "Make this lowercase: HELLO WORLD"), ("analysis", "Which is larger, 0.5 or 0.45?"),
    ("chat", "Recommend a colour for a bedroom wall, just one word."), ("chat", "ok bye"),
    ("writing", "Add a full stop to the end of this: the shop is open"),
    ("chat", "morning :)"), ("maths", "What is half of 50?"), ("data", "Write 42 in words."), ("code", "What file extension do Python files use?"),
]
ORDINARY = [
    ("chat", "What should I pack for a three-day trip to the mountains in autumn?"),
    ("chat", "Suggest five names for a golden retriever puppy."),
    ("chat", "How can I get better at waking up early?"),
    ("chat", "Give me a simple recipe for pancakes."),
    ("chat", "What are some good board games for four players?"),
    ("writing", "Write a two-line birthday message for my coworker Sam."),
    ("writing", "Draft a short out-of-office reply for next week."),
    ("writing", "Write a limerick about a forgetful cat."),
    ("writing", "Rewrite this to sound more polite: send me the report now."),
    ("writing", "Write a product description for a reusable water bottle in 50 words."),
    ("code", "Write a Python function that returns the largest number in a list."),
    ("code", "How do I read a CSV file with pandas?"),
    ("code", "What does git rebase do, in plain words?"),
    ("code", "Write a SQL query that counts the rows of a table named orders."),
    ("code", "How do I center a div with CSS flexbox?"),
    ("code", "Write a bash one-liner that counts the lines in every .txt file in a folder."),
    ("maths", "What is the area of a circle with radius 4 cm?"),
    ("maths", "If a shirt costs $40 after a 20% discount, what was the original price?"),
    ("maths", "Solve for x: 3x + 7 = 22."),
    ("maths", "What is the average of 12, 15, 20 and 33?"),
    ("analysis", "What are the main differences between renting and buying a home?"),
    ("analysis", "Summarise the plot of Romeo and Juliet in three sentences."),
    ("analysis", "What are the advantages of electric cars over petrol cars?"),
    ("analysis", "Why do leaves change colour in autumn?"),
    ("data", "Turn this into JSON: name Alice, age 30, city Paris."),
    ("data", "Which chart type suits monthly sales over two years?"),
    ("data", "Write a regular expression that matches a five-digit postcode."),
    ("chat", "Explain what inflation is to a twelve-year-old."),
    ("writing", "Give me three catchy titles for a blog post about home gardening."),
    ("code", "What is the difference between == and === in JavaScript?"),
    ("analysis", "List the pros and cons of working from home."),
    ("maths", "Convert the fraction 7/8 into a percentage and a decimal."),
    ("chat", "What's a good way to keep basil alive indoors?"), ("writing", "Write a thank-you note to a neighbour who fed my cat."),
    ("code", "How do I undo the last git commit but keep the changes?"), ("data", "Sort these numbers from smallest to largest and give the median: 8, 3, 11, 5."),
]
DEMANDING = [
    ("maths", "Prove that the product of two odd integers is odd, and that the converse of the statement 'if n^2 is even then n is even' holds."),
    ("maths", "Show that every bounded monotone sequence of real numbers converges, using only the completeness axiom."),
    ("maths", "Let f be differentiable on [a,b] with f(a)=f(b). Prove that f' has a zero in (a,b) without quoting Rolle's theorem."),
    ("maths", "Find the eigenvalues and eigenvectors of the matrix [[2,1,0],[1,2,1],[0,1,2]] and prove it is positive definite."),
    ("maths", "Compute the expected number of rolls of a fair die until two consecutive sixes appear, deriving the recurrence."),
    ("maths", "Prove by strong induction that every integer greater than 1 has a prime factorisation, and that it is unique."),
    ("code", "Implement a thread-safe bounded blocking queue in C++ using condition variables, and argue why it cannot deadlock."),
    ("code", "Write a parser and evaluator for arithmetic expressions with precedence, parentheses and unary minus in Rust, with error recovery."),
    ("code", "Design and implement an interval tree in Python supporting insert, delete and overlap queries in O(log n), with tests."),
    ("code", "My Go service leaks goroutines under load when the client disconnects mid-stream. Explain the likely causes and how to find and fix them with pprof."),
    ("code", "Refactor a 2,000-line legacy Java class with shared mutable state into testable components; lay out the steps, the seams you would cut and the risks."),
    ("code", "Implement Dijkstra's algorithm with a Fibonacci heap and analyse the amortised cost of decrease-key."),
    ("analysis", "Design a fraud detection pipeline for card payments that must decide within 50 ms; discuss features, model choice, feedback delay and how to evaluate it without leakage."),
    ("analysis", "Evaluate the trade-offs between event sourcing and a classic CRUD model for a banking core, including auditability, schema evolution and replay cost."),
    ("analysis", "Critically assess whether a 4-day work week raises productivity, weighing the evidence from the main trials and their confounders."),
    ("analysis", "Model the break-even point of a subscription business with 5% monthly churn, a $30 price and a $120 acquisition cost, and analyse sensitivity to churn."),
    ("analysis", "Compare Paxos and Raft for a geo-replicated configuration store and justify which you would pick under partial network partitions."),
    ("writing", "Write a 1,500-word short story told backwards in time whose final scene recasts the first, keeping a consistent unreliable narrator."),
    ("writing", "Draft a grant proposal section that argues the methodology for a randomised trial of a literacy app, addressing power, attrition and ethics."),
    ("writing", "Write a persuasive op-ed against a policy you support, steel-manning the opposing view, then a rebuttal that answers each point."),
    ("data", "Given sales data with missing months, seasonal effects and a promotion in March, design a forecasting approach and explain how you would validate it."),
    ("data", "Design a star schema for a ride-sharing company's analytics and write the SQL for weekly retention cohorts by city."),
    ("chat", "Explain, with a derivation, why the sky is blue but sunsets are red, quantifying the wavelength dependence of Rayleigh scattering."),
    ("chat", "Walk me through how public-key cryptography lets two strangers agree on a secret, with the maths of Diffie-Hellman and why it resists eavesdropping."),
    ("maths", "Derive the maximum likelihood estimator for the parameters of a Gaussian mixture and explain why EM converges to a local optimum."),
    ("code", "Write a lock-free single-producer single-consumer ring buffer in C11 atomics and justify each memory ordering you use."),
    ("analysis", "Analyse the second-order effects of a city banning cars from its centre on housing, retail and commuting, with the mechanisms behind each."),
    ("maths", "Prove that a graph is bipartite if and only if it contains no odd cycle."),
    ("data", "Our A/B test shows a 3% lift with p=0.04 after peeking daily for three weeks. Explain what went wrong statistically and design a correct sequential test."),
    ("code", "Implement optimistic concurrency control for a REST API backed by PostgreSQL, covering retries, ETags and the anomalies it still allows."),
    ("maths", "Prove that the set of real numbers is uncountable using Cantor's diagonal argument, and explain where the proof fails for the rationals."),
    ("code", "Design a sharded, strongly consistent counter service that survives the loss of a data centre, and analyse its write latency."),
    ("analysis", "Derive the optimal stopping rule for the secretary problem and prove that it selects the best candidate with probability near 1/e."),
    ("writing", "Write a rigorous literature review outline on transformer interpretability, organising the methods by what they can and cannot establish."),
    ("data", "Explain how to detect and correct for survivorship bias in a dataset of startup outcomes, with a concrete estimation strategy."),
    ("chat", "Explain how mRNA vaccines trigger immunity, step by step, down to the role of lipid nanoparticles and antigen presentation."),
]
# Short demanding requests against long trivial ones: length points the wrong way on every pair.
SHORT_DEMANDING = [
    ("maths", "Prove Fermat's little theorem."), ("maths", "Prove that e is irrational."), ("maths", "Derive the quadratic formula."),
    ("maths", "Prove the Cauchy-Schwarz inequality."), ("maths", "Show that sqrt(3) is irrational."),
    ("code", "Implement a red-black tree in C."), ("code", "Implement Paxos."), ("code", "Write a garbage collector for a toy VM."),
    ("code", "Design a distributed lock service."), ("code", "Implement a JIT compiler for Brainfuck."),
    ("analysis", "Analyse the CAP theorem's implications for banking."), ("analysis", "Design a stock exchange matching engine."),
    ("analysis", "Derive the Nash equilibrium of a Cournot duopoly."), ("analysis", "Optimise a global supply chain under tariffs."),
    ("writing", "Write a sonnet proving there are infinitely many primes."), ("writing", "Critique Kant's categorical imperative rigorously."),
    ("data", "Design a schema for versioned, bitemporal contracts."), ("data", "Derive the bias of the OLS estimator with omitted variables."),
    ("chat", "Explain why Godel's incompleteness theorem holds."), ("chat", "Derive E=mc^2 from special relativity."),
    ("maths", "Prove the Pythagorean theorem two ways."), ("code", "Implement a lock-free hash map."),
]
_NAMES = ("Olivia, Liam, Emma, Noah, Ava, Elijah, Sophia, Lucas, Isabella, Mason, Mia, Ethan, Amelia, Logan, Harper, James, "
          "Evelyn, Benjamin, Abigail, Henry, Emily, Alexander, Ella, Sebastian")
_NOTE = ("our team lunch is on friday at noon in the big meeting room. please tell me by wednesday if you have any allergies. "
         "we will order pizza and salad, and there will be cake for maria's birthday. parking is free after eleven.")
LONG_TRIVIAL = [
    ("data", f"Sort these names alphabetically, one per line: {_NAMES}."),
    ("data", f"Put these names in reverse alphabetical order: {_NAMES}."),
    ("data", f"Count how many names are in this list: {_NAMES}."),
    ("data", f"Return these names as a JSON list of strings: {_NAMES}."),
    ("writing", f"Fix the capital letters in this message, change nothing else: {_NOTE}"),
    ("writing", f"Translate this message into Spanish: {_NOTE}"),
    ("writing", f"Make this message into three bullet points: {_NOTE}"),
    ("writing", f"Rewrite this so every sentence starts on a new line: {_NOTE}"),
    ("data", "Convert these temperatures from Celsius to Fahrenheit, one per line: 12, 18, 21, 25, 30, 33, 7, 0, -4, 15, 22, 28, 31, 9, 3, 16."),
    ("data", "Format these phone numbers as +44 7XXX XXXXXX: 07700900123, 07700900456, 07700900789, 07700900012, 07700900345, 07700900678, 07700900901, 07700900234."),
    ("data", ("Turn this into a markdown table with columns fruit and price: apples 1.20, pears 0.90, plums 2.10, grapes 3.00, kiwis 0.50, "
             "lemons 0.40, limes 0.35, mangoes 1.80, cherries 4.50, figs 2.75, dates 3.10, oranges 0.60.")),
    ("data", ("Change the date format of each line from MM/DD/YYYY to DD.MM.YYYY: 01/15/2023, 02/28/2022, 03/03/2021, 04/10/2020, "
             "05/22/2019, 06/30/2018, 07/04/2017, 08/19/2016, 09/09/2015, 10/31/2014, 11/11/2013, 12/25/2012.")),
    ("chat", ("Thanks so much for your help today with the spreadsheet and the slides, and for staying late to finish the printing, "
             "the whole team really appreciated it and the client meeting went well. Have a great weekend and see you on Monday!")),
    ("chat", ("Hi there! I hope you are having a lovely day. I just wanted to say hello and tell you that I finally tried the pasta "
             "place you mentioned last week, and it was every bit as good as you said. Anyway, that's all, take care!")),
    ("code", ("Rename the variable 'tmp' to 'total' everywhere in this code and change nothing else:\n"
             "tmp = 0\nfor x in items:\n    tmp = tmp + x\nprint(tmp)\nif tmp > 10:\n    print('big', tmp)\nelse:\n    print('small', tmp)\n")),
    ("code", ("Indent this JSON with two spaces: {\"name\": \"shop\", \"items\": [{\"id\": 1, \"price\": 2.5}, {\"id\": 2, \"price\": 3.75}, "
             "{\"id\": 3, \"price\": 1.25}, {\"id\": 4, \"price\": 9.99}], \"open\": true, \"city\": \"Leeds\", \"tags\": [\"food\", \"local\"]}")),
    ("writing", ("Add a comma after the greeting and a full stop at the end of each line:\nDear John\nThank you for the flowers\nThey are lovely\n"
                "We put them in the kitchen\nThe children like them too\nSee you at the weekend\nBest wishes\nAnne")),
    ("data", ("Remove the duplicate words from this list and keep the order: red, blue, red, green, yellow, blue, purple, green, orange, red, "
             "pink, yellow, black, white, blue, grey, pink, brown, orange, white.")),
    ("maths", "Add up these numbers: 12, 7, 30, 4, 18, 25, 3, 9, 40, 11, 6, 15, 22, 8, 2, 19."),
    ("writing", f"Make this all uppercase: {_NOTE}"),
    ("analysis", f"Which day is the lunch on? Here is the message: {_NOTE}"),
    ("data", ("Split these full names into first and last name columns as CSV: Ana Silva, Tom Becker, Yuki Tanaka, Omar Haddad, Lea Novak, "
             "Ravi Patel, Ines Costa, Jan Kowalski, Mei Lin, Paul Dubois, Sara Rossi, Ken Adams.")),
]
